#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "sampling/sampler.h"
#include "spec/verifier.h"

using namespace tandem::sampling;

TEST(Sampler, GreedyIsArgmaxLowestIndexOnTies) {
  const std::vector<float> l = {0.5f, 2.0f, 2.0f, -1.0f};
  EXPECT_EQ(argmax(l), 1);
  SamplingParams p;
  p.temperature = 0.0f;
  Rng rng(1);
  EXPECT_EQ(sample(l, p, rng), 1);
}

TEST(Sampler, ArgmaxAgreesWithMaxElementOnTiesSignedZerosAndNans) {
  const float nan = std::nanf("");
  std::vector<std::vector<float>> rows = {
      {3.0f},
      {nan, 5.0f, 1.0f},                       // a NaN first is never beaten (max_element's rule)
      {1.0f, nan, 7.0f, nan, 7.0f},            // NaNs elsewhere are skipped; the first 7 wins
      {-0.0f, 0.0f, -1.0f},                    // -0 and +0 tie: the first
      {-5.0f, -3.0f, -3.0f, -4.0f, -9.0f, -3.0f, -8.0f, -7.0f, -6.0f, -3.0f, -2.0f},
  };
  uint32_t s = 7;
  for (size_t n : {8u, 9u, 15u, 16u, 17u, 1000u, 16387u}) {  // every lane of the 8-way split, and tails
    std::vector<float> v(n);
    for (float& x : v) {
      s = s * 1664525u + 1013904223u;
      x = static_cast<float>(s >> 20) / 64.0f;  // coarse values: many ties
    }
    rows.push_back(v);
    v[n - 1] = 1e9f;  // the maximum in the tail
    rows.push_back(v);
  }
  for (const auto& r : rows)
    EXPECT_EQ(argmax(r), std::max_element(r.begin(), r.end()) - r.begin()) << "row of " << r.size();
}

TEST(Sampler, TopKTopPMinPRestrictTheDistribution) {
  const std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 2;
  auto d = target_distribution(l, p);
  EXPECT_NEAR(d[0], 0.5 / 0.8, 1e-6);
  EXPECT_NEAR(d[1], 0.3 / 0.8, 1e-6);
  EXPECT_EQ(d[2], 0.0f);
  p.top_k = 0;
  p.top_p = 0.85f;  // 0.5 + 0.3 = 0.8 < 0.85, so the 0.15 token is kept too
  d = target_distribution(l, p);
  EXPECT_GT(d[2], 0.0f);
  EXPECT_EQ(d[3], 0.0f);
  p.top_p = 1.0f;
  p.min_p = 0.5f;  // keep p >= 0.25
  d = target_distribution(l, p);
  EXPECT_GT(d[1], 0.0f);
  EXPECT_EQ(d[2], 0.0f);
}

TEST(Sampler, TemperatureSharpens) {
  const std::vector<float> l = {1.0f, 0.0f};
  SamplingParams p;
  p.temperature = 0.5f;
  const auto d = target_distribution(l, p);
  EXPECT_NEAR(d[0], 1.0 / (1.0 + std::exp(-2.0)), 1e-6);
}

TEST(Sampler, PenaltiesFollowOpenAIAndHF) {
  std::vector<float> l = {2.0f, -2.0f, 1.0f};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  TokenHistory h;
  h.prompt_counts[0] = 1;
  h.output_counts[1] = 2;
  apply_penalties(l, p, h);
  EXPECT_FLOAT_EQ(l[0], 1.0f);                         // 2 / 2
  EXPECT_FLOAT_EQ(l[1], -4.0f - 2 * 0.5f - 0.25f);     // -2 * 2, then frequency and presence
  EXPECT_FLOAT_EQ(l[2], 1.0f);
}

// The rejection rule must leave the target distribution unchanged whatever the (deterministic) draft.
TEST(Verifier, RejectionSamplingPreservesTheTargetDistribution) {
  const std::vector<float> probs = {0.1f, 0.6f, 0.25f, 0.05f};
  for (int32_t draft : {0, 1, 3}) {
    Rng rng(42 + draft);
    std::vector<int> counts(4, 0);
    const int n = 200000;
    for (int i = 0; i < n; ++i) ++counts[verify_draft_token(probs, draft, rng).first];
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(counts[k] / double(n), probs[k], 0.005) << "draft " << draft << " token " << k;
  }
}

TEST(Verifier, GreedyChainAcceptsTheMatchingPrefixThenCorrects) {
  // Target argmax per row: 5, 6, 9, 8. Drafts 5, 6, 7: accept 2, emit the correction 9.
  const std::vector<std::vector<float>> rows = {{0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 1, 0, 0, 0},
                                                {0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, {0, 0, 0, 0, 0, 0, 0, 0, 1, 0}};
  SamplingParams p;
  p.temperature = 0.0f;
  Rng rng(0);
  const std::vector<int32_t> drafts = {5, 6, 7};
  auto r = tandem::spec::verify_chain([&](int j, std::span<const int32_t>) { return rows[j]; }, drafts, p, rng);
  EXPECT_EQ(r.accepted, 2);
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{5, 6, 9}));
  const std::vector<int32_t> all = {5, 6, 9};
  r = tandem::spec::verify_chain([&](int j, std::span<const int32_t>) { return rows[j]; }, all, p, rng);
  EXPECT_EQ(r.accepted, 3);
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{5, 6, 9, 8}));  // bonus from the last row
}
