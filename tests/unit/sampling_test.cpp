#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <span>

#include "sampling/philox.h"
#include "sampling/rng.h"
#include "sampling/sampler.h"
#include "spec/verifier.h"

using namespace tandem::sampling;

namespace {

constexpr double kMaxUniform = 1.0 - 0x1.0p-53;  // the largest value philox::uniform returns

// Random123's tests/kat_vectors, the three "philox4x32 10" lines (counter[4], key[2] -> output[4]):
//   philox4x32 10 00000000 00000000 00000000 00000000 00000000 00000000   6627e8d5 e169c58d bc57ac4c 9b00dbd8
//   philox4x32 10 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff   408f276d 41c83b0e a20bc7c6 6d5451fd
//   philox4x32 10 243f6a88 85a308d3 13198a2e 03707344 a4093822 299f31d0   d16cfe09 94fdcceb 5001e420 24126ea1
struct Kat {
  philox::Block counter;
  philox::Key key;
  philox::Block expected;
};
constexpr Kat kKats[] = {
    {{{0, 0, 0, 0}}, {{0, 0}}, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
    {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
     {{0xffffffff, 0xffffffff}},
     {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
    {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
     {{0xa4093822, 0x299f31d0}},
     {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
};

constexpr bool same(philox::Block a, philox::Block b) {
  return a.w[0] == b.w[0] && a.w[1] == b.w[1] && a.w[2] == b.w[2] && a.w[3] == b.w[3];
}

// constexpr all the way down: the known answers hold at compile time too.
static_assert(same(philox::philox4x32(kKats[0].counter, kKats[0].key), kKats[0].expected));
static_assert(same(philox::philox4x32(kKats[1].counter, kKats[1].key), kKats[1].expected));
static_assert(same(philox::philox4x32(kKats[2].counter, kKats[2].key), kKats[2].expected));

}  // namespace

TEST(Philox, MatchesRandom123KnownAnswers) {
  for (const Kat& k : kKats) {
    const philox::Block out = philox::philox4x32(k.counter, k.key);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.w[i], k.expected.w[i]) << "word " << i;
  }
}

TEST(Philox, UniformIsTheTop53BitsOfTheSeedPositionBlock) {
  for (uint64_t seed : {0ull, 1ull, 0x0123456789abcdefull}) {
    for (uint64_t pos : {0ull, 1ull, 0xffffffffull, 0x100000000ull}) {
      const philox::Block b = philox::philox4x32(
          {{static_cast<uint32_t>(pos), static_cast<uint32_t>(pos >> 32), 0, 0}},
          {{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}});
      const uint64_t bits = (uint64_t{b.w[0]} << 32 | b.w[1]) >> 11;
      EXPECT_EQ(philox::uniform(seed, pos), std::ldexp(static_cast<double>(bits), -53));
    }
  }
  // Counter {0,0,0,0}, key {0,0}: (0x6627e8d5e169c58d >> 11) * 2^-53.
  EXPECT_EQ(philox::uniform(0, 0), std::ldexp(static_cast<double>(0x6627e8d5e169c58dull >> 11), -53));
}

TEST(Philox, UniformsAreInRangeAndDifferAcrossPositionsAndSeeds) {
  const int n = 100000;
  double sum = 0.0, lo = 1.0, hi = 0.0;
  std::vector<double> seen;
  for (int i = 0; i < n; ++i) {
    const double u = philox::uniform(42, static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    seen.push_back(u);
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);  // sd of the mean ~ 0.0009
  EXPECT_LT(lo, 1e-3);
  EXPECT_GT(hi, 1 - 1e-3);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end()) << "two positions gave the same uniform";
  int same_as_next_seed = 0, same_as_neighbour_seed = 0;
  for (int i = 0; i < 1000; ++i) {
    same_as_next_seed += philox::uniform(42, i) == philox::uniform(43, i);
    same_as_neighbour_seed += philox::uniform(42, i) == philox::uniform(42ull | (1ull << 40), i);
  }
  EXPECT_EQ(same_as_next_seed, 0);
  EXPECT_EQ(same_as_neighbour_seed, 0);  // the seed's high word matters too
}

TEST(CounterRng, IsAPureFunctionOfSeedAndPosition) {
  const CounterRng a(7), b(7), c(8);
  EXPECT_EQ(a.seed(), 7u);
  for (int64_t pos : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{1000}, int64_t{1} << 40}) {
    EXPECT_EQ(a.uniform(pos), philox::uniform(7, static_cast<uint64_t>(pos)));
    EXPECT_EQ(a.uniform(pos), a.uniform(pos));  // no stream advances
    EXPECT_EQ(a.uniform(pos), b.uniform(pos));
    EXPECT_NE(a.uniform(pos), c.uniform(pos));
  }
  EXPECT_NE(a.uniform(0), a.uniform(1));
  EXPECT_THROW((void)a.uniform(-1), tandem::Error);
}

TEST(Sampler, InverseCdfWalksTokensInIdOrder) {
  // Cells: [0, .25) -> 1, [.25, .75) -> 3, [.75, 1) -> 4. Ids 0, 2 and 5 have no mass.
  const std::vector<float> probs = {0.0f, 0.25f, 0.0f, 0.5f, 0.25f, 0.0f};
  EXPECT_EQ(inverse_cdf(probs, 0.0), 1);  // never the zero-probability id 0
  EXPECT_EQ(inverse_cdf(probs, 0.2499), 1);
  EXPECT_EQ(inverse_cdf(probs, 0.25), 3);  // a cell is closed below, open above
  EXPECT_EQ(inverse_cdf(probs, 0.7499), 3);
  EXPECT_EQ(inverse_cdf(probs, 0.75), 4);
  EXPECT_EQ(inverse_cdf(probs, kMaxUniform), 4);  // never the zero-probability id 5
  // Weights need not sum to 1: u is scaled by their total (8 here).
  const std::vector<float> weights = {0.0f, 2.0f, 0.0f, 6.0f};
  EXPECT_EQ(inverse_cdf(weights, 0.2499), 1);
  EXPECT_EQ(inverse_cdf(weights, 0.25), 3);
  EXPECT_EQ(inverse_cdf(weights, kMaxUniform), 3);
  // Negative and NaN entries count as zero.
  const std::vector<float> odd = {-1.0f, std::nanf(""), 1.0f, std::nanf("")};
  EXPECT_EQ(inverse_cdf(odd, 0.0), 2);
  EXPECT_EQ(inverse_cdf(odd, kMaxUniform), 2);
  EXPECT_THROW((void)inverse_cdf(probs, 1.0), tandem::Error);
  EXPECT_THROW((void)inverse_cdf(std::vector<float>{0.0f, 0.0f}, 0.5), tandem::Error);
}

TEST(Sampler, InverseCdfAtTheTopOfTheRangeReturnsTheLastTokenWithMass) {
  // Masses whose float sum is not 1: whatever u * total rounds to, the top uniform lands on the last token
  // with mass, never past it.
  uint32_t s = 1;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> probs(37, 0.0f);
    int32_t last = -1;
    for (int i = 0; i < 37; ++i) {
      s = s * 1664525u + 1013904223u;
      if ((s >> 28) < 6) continue;  // about 60% of ids get mass
      probs[i] = static_cast<float>(s >> 8) * 0x1.0p-24f / 7.0f;
      last = i;
    }
    if (last < 0) continue;
    EXPECT_EQ(inverse_cdf(probs, kMaxUniform), last) << "trial " << trial;
  }
}

TEST(Sampler, ExtremeUniformsNeverPickAZeroProbabilityToken) {
  uint32_t s = 3;
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> logits(500);
    for (float& x : logits) {
      s = s * 1664525u + 1013904223u;
      x = static_cast<float>(s >> 8) * 0x1.0p-24f * 12.0f - 6.0f;
    }
    SamplingParams p;
    p.temperature = 0.8f;
    p.top_k = trial % 3 == 0 ? 0 : 1 + trial;
    p.top_p = trial % 2 == 0 ? 0.9f : 1.0f;
    p.min_p = trial % 5 == 0 ? 0.05f : 0.0f;
    const auto probs = target_distribution(logits, p);
    int32_t first = -1, last = -1;
    for (int32_t i = 0; i < static_cast<int32_t>(probs.size()); ++i)
      if (probs[i] > 0.0f) last = i, first = first < 0 ? i : first;
    EXPECT_EQ(sample(logits, p, 0.0), first) << "trial " << trial;
    EXPECT_EQ(sample(logits, p, kMaxUniform), last) << "trial " << trial;
  }
}

TEST(Sampler, SampleDrawsTheTargetDistribution) {
  const std::vector<float> probs = {0.1f, 0.6f, 0.25f, 0.05f};
  std::vector<float> logits;
  for (float x : probs) logits.push_back(std::log(x));
  SamplingParams p;
  const auto d = target_distribution(logits, p);
  const CounterRng rng(5);
  std::vector<int> counts(4, 0);
  const int n = 200000;
  for (int i = 0; i < n; ++i) ++counts[sample(logits, p, rng.uniform(i))];
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(counts[k] / double(n), d[k], 0.005) << "token " << k;
}

TEST(Sampler, GreedyIsArgmaxLowestIndexOnTies) {
  const std::vector<float> l = {0.5f, 2.0f, 2.0f, -1.0f};
  EXPECT_EQ(argmax(l), 1);
  SamplingParams p;
  p.temperature = 0.0f;
  EXPECT_EQ(sample(l, p, 0.0), 1);
  EXPECT_EQ(sample(l, p, kMaxUniform), 1);
}

TEST(Sampler, ArgmaxAgreesWithMaxElementOnTiesSignedZerosAndNans) {
  const float nan = std::nanf("");
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<std::vector<float>> rows = {
      {3.0f},
      {nan, 5.0f, 1.0f},             // NaN counts as -inf, first or not: 5 wins
      {1.0f, nan, 7.0f, nan, 7.0f},  // NaNs elsewhere are skipped; the first 7 wins
      {nan, nan, nan},               // all NaN: all tie at -inf, the lowest id
      {-inf, nan, -inf},             // NaN and -inf tie
      {-inf, 2.0f, inf, inf},        // the first +inf
      {-0.0f, 0.0f, -1.0f},          // -0 and +0 tie: the first
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
  // std::max_element with NaN ordered as -inf: the contract of argmax.
  auto less = [inf](float a, float b) { return (std::isnan(a) ? -inf : a) < (std::isnan(b) ? -inf : b); };
  for (const auto& r : rows)
    EXPECT_EQ(argmax(r), std::max_element(r.begin(), r.end(), less) - r.begin()) << "row of " << r.size();
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

// ---------------------------------------------------------------- hardening (issue 18)

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Parameter sets a client could try: extreme, non-finite, out of range.
std::vector<SamplingParams> extreme_params() {
  std::vector<SamplingParams> out;
  for (float t : {0.0f, 1e-45f, 0.7f, 1e30f, kInf, kNan, -1.0f}) {
    for (float rep : {1.0f, 1e-45f, 1e38f, kInf, kNan, 0.0f}) {
      SamplingParams p;
      p.temperature = t;
      p.repetition_penalty = rep;
      out.push_back(p);
    }
  }
  for (float pen : {2.0f, -2.0f, 1e38f, -1e38f, kInf, -kInf, kNan}) {
    SamplingParams p;
    p.frequency_penalty = pen;
    p.presence_penalty = -pen;
    out.push_back(p);
  }
  for (float x : {0.0f, -1.0f, 1e-45f, 2.0f, kInf, kNan}) {
    SamplingParams p;
    p.top_p = x;
    p.min_p = x;
    p.top_k = x > 1 ? 1 << 30 : -5;
    out.push_back(p);
  }
  return out;
}

// Every id the sampler returns indexes the row, whatever the row holds and the parameters say; and it never
// picks a NaN / -inf logit while some logit is finite or +inf.
TEST(SamplingHardening, NeverReturnsAnIdOutsideTheRowOrANanToken) {
  std::vector<std::vector<float>> rows = {
      {kNan, kNan, kNan, kNan},         {-kInf, -kInf, -kInf},
      {kNan, -kInf, kNan, -kInf, kNan}, {kNan, 1.0f, kNan, 0.5f},
      {-kInf, -kInf, 3.0f, kNan},       {kInf, 0.0f, kInf, kNan},
      {-3.4e38f, 3.4e38f, 0.0f},        {0.0f},
  };
  std::mt19937 gen(18);
  for (int r = 0; r < 40; ++r) {  // random rows mixing everything
    std::vector<float> row(1 + gen() % 70);
    for (float& x : row) {
      const uint32_t k = gen() % 10;
      x = k == 0   ? kNan
          : k == 1 ? -kInf
          : k == 2 ? kInf
                   : std::ldexp(static_cast<float>(gen() % 2000) - 1000.0f, gen() % 140);
    }
    rows.push_back(row);
  }
  TokenHistory h;
  h.prompt_counts[0] = 1;
  h.output_counts[1] = 3;
  h.output_counts[2] = 1;
  for (const SamplingParams& p : extreme_params()) {
    for (const auto& raw : rows) {
      std::vector<float> row = raw;
      apply_penalties(row, p, h);
      bool any_real = false;
      for (float x : row) any_real = any_real || (!std::isnan(x) && x != -kInf);
      for (double u : {0.0, 0.5, kMaxUniform}) {
        int32_t id = -1;
        ASSERT_NO_THROW(id = sample(row, p, u)) << "T " << p.temperature << " rep " << p.repetition_penalty;
        ASSERT_GE(id, 0);
        ASSERT_LT(static_cast<size_t>(id), row.size());
        if (any_real) {
          EXPECT_FALSE(std::isnan(row[id]) || row[id] == -kInf)
              << "picked a non-token logit " << row[id] << " (T " << p.temperature << ")";
        } else {
          EXPECT_EQ(id, 0) << "a row without a finite logit falls back to argmax's lowest id";
        }
      }
    }
  }
}

// Penalties move a finite logit but never make it NaN or infinite, so a penalised row still has a softmax.
TEST(SamplingHardening, ExtremePenaltiesKeepFiniteLogitsFinite) {
  TokenHistory h;
  h.prompt_counts[0] = 1;
  h.prompt_counts[1] = 1;
  h.output_counts[2] = 1000000;
  h.output_counts[3] = 1;
  h.output_counts[4] = 2;
  for (const SamplingParams& p : extreme_params()) {
    std::vector<float> l = {2.0f, 0.0f, -2.0f, 3.0e38f, -3.0e38f, 1.0f};
    apply_penalties(l, p, h);
    for (size_t i = 0; i < l.size(); ++i)
      EXPECT_TRUE(std::isfinite(l[i])) << "logit " << i << " = " << l[i] << " (rep " << p.repetition_penalty
                                       << ", freq " << p.frequency_penalty << ")";
    EXPECT_EQ(l[5], 1.0f);  // never seen: untouched
  }
  // Ordinary values keep OpenAI's and HF's arithmetic exactly (PenaltiesFollowOpenAIAndHF), and saturate
  // instead of overflowing.
  SamplingParams p;
  p.repetition_penalty = 1e-40f;  // 5 / 1e-40 overflows a float
  std::vector<float> l = {5.0f};
  TokenHistory seen;
  seen.prompt_counts[0] = 1;
  apply_penalties(l, p, seen);
  EXPECT_EQ(l[0], std::numeric_limits<float>::max());
}

TEST(SamplingHardening, NanOrInfiniteTemperatureAndNanRowsHaveDefinedResults) {
  const std::vector<float> l = {0.5f, 2.0f, kNan, 1.0f};
  SamplingParams p;
  p.temperature = kNan;  // not > 0: greedy
  EXPECT_EQ(sample(l, p, 0.9), 1);
  p.temperature = kInf;  // the largest float: near-uniform over the finite logits, never the NaN
  for (double u : {0.0, 0.3, 0.6, kMaxUniform}) EXPECT_NE(sample(l, p, u), 2);
  const auto d = target_distribution(l, p);
  EXPECT_EQ(d[2], 0.0f);
  EXPECT_NEAR(d[0] + d[1] + d[3], 1.0, 1e-6);

  p.temperature = 1.0f;
  const std::vector<float> all_nan = {kNan, kNan, kNan};
  EXPECT_EQ(sample(all_nan, p, 0.7), 0);
  EXPECT_EQ(target_distribution(all_nan, p), (std::vector<float>{1.0f, 0.0f, 0.0f}));
  const std::vector<float> infs = {1.0f, kInf, 0.0f, kInf};
  const auto di = target_distribution(infs, p);
  EXPECT_EQ(di, (std::vector<float>{0.0f, 0.5f, 0.0f, 0.5f}));

  // log-probabilities of such rows are numbers (or -inf), never NaN, and top entries sort NaN last.
  std::vector<float> lp(4);
  log_softmax(l, lp);
  for (float x : lp) EXPECT_FALSE(std::isnan(x));
  EXPECT_EQ(lp[2], -kInf);
  log_softmax(std::vector<float>{kNan, -kInf}, std::span<float>(lp.data(), 2));
  EXPECT_FLOAT_EQ(lp[0], -std::log(2.0f));
  const auto top = top_k_entries(std::vector<float>{kNan, 1.0f, kNan, 3.0f, 2.0f}, 5);
  ASSERT_EQ(top.size(), 5u);
  EXPECT_EQ(top[0].first, 3);
  EXPECT_EQ(top[1].first, 4);
  EXPECT_EQ(top[2].first, 1);
}

// What request validation refuses with a 400 (the server calls invalid_param after reading the fields):
// values a float cannot hold (1e39 becomes inf when narrowed), NaN, and out-of-range values.
TEST(SamplingHardening, InvalidParamNamesTheField) {
  EXPECT_EQ(SamplingParams{}.invalid_param(), std::nullopt);
  struct Bad {
    const char* field;
    SamplingParams p;
  };
  auto with = [](auto set) {
    SamplingParams p;
    set(p);
    return p;
  };
  const Bad bad[] = {
      {"temperature", with([](SamplingParams& p) { p.temperature = kNan; })},
      {"temperature", with([](SamplingParams& p) { p.temperature = static_cast<float>(1e39); })},
      {"temperature", with([](SamplingParams& p) { p.temperature = -0.5f; })},
      {"top_p", with([](SamplingParams& p) { p.top_p = kNan; })},
      {"top_p", with([](SamplingParams& p) { p.top_p = 0.0f; })},
      {"top_p", with([](SamplingParams& p) { p.top_p = 1.5f; })},
      {"top_k", with([](SamplingParams& p) { p.top_k = -2; })},
      {"min_p", with([](SamplingParams& p) { p.min_p = kNan; })},
      {"min_p", with([](SamplingParams& p) { p.min_p = 2.0f; })},
      {"presence_penalty", with([](SamplingParams& p) { p.presence_penalty = kInf; })},
      {"frequency_penalty", with([](SamplingParams& p) { p.frequency_penalty = -kInf; })},
      {"frequency_penalty", with([](SamplingParams& p) { p.frequency_penalty = kNan; })},
      {"repetition_penalty",
       with([](SamplingParams& p) { p.repetition_penalty = static_cast<float>(1e39); })},
      {"repetition_penalty", with([](SamplingParams& p) { p.repetition_penalty = kNan; })},
      {"repetition_penalty", with([](SamplingParams& p) { p.repetition_penalty = 0.0f; })},
  };
  for (const Bad& b : bad) {
    const auto e = b.p.invalid_param();
    ASSERT_TRUE(e.has_value()) << b.field;
    EXPECT_EQ(e->field, b.field);
    EXPECT_NE(e->reason.find(std::string("'") + b.field + "'"), std::string::npos) << e->reason;
  }
  SamplingParams ok;
  ok.temperature = 0.0f;
  ok.top_p = 1e-6f;
  ok.top_k = -1;
  ok.min_p = 1.0f;
  ok.presence_penalty = 2.0f;
  ok.frequency_penalty = -2.0f;
  ok.repetition_penalty = 1e30f;
  EXPECT_EQ(ok.invalid_param(), std::nullopt);
}

// Each verify row makes the draw plain decoding makes at its output position, so the emitted tokens are
// those of plain sampling token for token (whatever the drafts), and in law the rejection rule with a
// one-hot draft: P(accept d) = p(d), the correction distributed as p without d, renormalised.
TEST(Verifier, SampledChainEmitsWhatPlainSamplingEmitsAtEachPosition) {
  const int V = 6;
  std::vector<std::vector<float>> rows(4, std::vector<float>(V));
  uint32_t s = 11;
  for (auto& r : rows)
    for (float& x : r) {
      s = s * 1664525u + 1013904223u;
      x = static_cast<float>(s >> 8) * 0x1.0p-24f * 3.0f;
    }
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_p = 0.9f;
  const CounterRng rng(99);
  auto fn = [&](int j, std::span<const int32_t>) { return rows[j]; };
  int accepted_somewhere = 0, rejected_somewhere = 0;
  for (int64_t first = 0; first < 3000; first += 3) {
    // Drafts: the plain sample at each position, with one of them (or none) replaced by another token.
    std::vector<int32_t> plain, drafts;
    for (int j = 0; j < 4; ++j) plain.push_back(sample(rows[j], p, rng.uniform(first + j)));
    drafts.assign(plain.begin(), plain.begin() + 3);
    const int wrong = static_cast<int>(first % 4);  // 3: no wrong draft
    if (wrong < 3) drafts[wrong] = (drafts[wrong] + 1 + static_cast<int32_t>(first % (V - 1))) % V;
    const auto r = tandem::spec::verify_chain(fn, drafts, p, rng, first);
    ASSERT_EQ(r.accepted, wrong) << "first position " << first;
    ASSERT_EQ(r.tokens, std::vector<int32_t>(plain.begin(), plain.begin() + wrong + 1)) << "first position " << first;
    accepted_somewhere += r.accepted > 0;
    rejected_somewhere += r.accepted < 3;
  }
  EXPECT_GT(accepted_somewhere, 0);
  EXPECT_GT(rejected_somewhere, 0);
}

TEST(Verifier, OneDraftFollowsTheRejectionRuleInLaw) {
  const std::vector<float> probs = {0.1f, 0.6f, 0.25f, 0.05f};
  std::vector<float> logits;
  for (float x : probs) logits.push_back(std::log(x));
  SamplingParams p;
  const auto d = target_distribution(logits, p);
  auto fn = [&](int, std::span<const int32_t>) { return logits; };
  for (int32_t draft : {0, 1, 3}) {
    const CounterRng rng(42 + draft);
    std::vector<int> counts(4, 0);
    int accepted = 0;
    const int n = 200000;
    for (int i = 0; i < n; ++i) {
      const auto r = tandem::spec::verify_chain(fn, std::vector<int32_t>{draft}, p, rng, 2 * int64_t{i});
      ++counts[r.tokens[0]];
      accepted += r.accepted;
    }
    EXPECT_NEAR(accepted / double(n), d[draft], 0.005) << "draft " << draft;
    for (int k = 0; k < 4; ++k) {
      EXPECT_NEAR(counts[k] / double(n), d[k], 0.005) << "draft " << draft << " token " << k;
      if (k == draft) continue;  // given a rejection: p without the draft, renormalised
      EXPECT_NEAR(counts[k] / double(n - accepted), d[k] / (1 - d[draft]), 0.01) << "draft " << draft << " token " << k;
    }
  }
}

TEST(Verifier, GreedyChainAcceptsTheMatchingPrefixThenCorrects) {
  // Target argmax per row: 5, 6, 9, 8. Drafts 5, 6, 7: accept 2, emit the correction 9.
  const std::vector<std::vector<float>> rows = {{0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 1, 0, 0, 0},
                                                {0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, {0, 0, 0, 0, 0, 0, 0, 0, 1, 0}};
  SamplingParams p;
  p.temperature = 0.0f;
  const CounterRng rng(0);
  const std::vector<int32_t> drafts = {5, 6, 7};
  auto r = tandem::spec::verify_chain([&](int j, std::span<const int32_t>) { return rows[j]; }, drafts, p, rng, 0);
  EXPECT_EQ(r.accepted, 2);
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{5, 6, 9}));
  const std::vector<int32_t> all = {5, 6, 9};
  r = tandem::spec::verify_chain([&](int j, std::span<const int32_t>) { return rows[j]; }, all, p, rng, 17);
  EXPECT_EQ(r.accepted, 3);
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{5, 6, 9, 8}));  // bonus from the last row
}

TEST(Verifier, RowsAfterTheFirstMismatchAreNeverRequested) {
  const std::vector<std::vector<float>> rows = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  SamplingParams p;
  p.temperature = 0.0f;
  std::vector<int> asked;
  const auto r = tandem::spec::verify_chain(
      [&](int j, std::span<const int32_t> so_far) {
        EXPECT_EQ(so_far.size(), static_cast<size_t>(j));  // the tokens accepted before row j
        asked.push_back(j);
        return rows[j];
      },
      std::vector<int32_t>{0, 2}, p, CounterRng(1), 0);
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(asked, (std::vector<int>{0, 1}));
  EXPECT_THROW((void)tandem::spec::verify_chain([&](int j, std::span<const int32_t>) { return rows[j]; },
                                                std::vector<int32_t>{3}, p, CounterRng(1), 0),
               tandem::Error);
}
