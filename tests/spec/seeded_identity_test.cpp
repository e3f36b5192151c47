// Seeded sampling returns the same token ids with speculation off and on (K = 1..4), alone and batched with
// other, different requests. Exact, not statistical: each output position draws its own counter-based
// uniform (sampling/rng.h), a verify row makes the draw a decode row makes (spec/verifier.h), and the CPU
// forward gives a row bit-identical logits whatever rows share its batch.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "common/test_backend.h"
#include "common/fixtures.h"
#include "common/generate.h"
#include "engine/engine.h"

using namespace tandem;

namespace {

using test::generate;
using test::GenRun;

std::vector<std::vector<int32_t>> tiny_prompts() {
  std::ifstream f(test::source_dir() / "models" / "tandem-tiny" / "eval.json");
  return nlohmann::json::parse(f)["prompts"].get<std::vector<std::vector<int32_t>>>();
}

/// The requests whose output is compared: fixed seeds; one with penalties (the verify rows then see the
/// history including the drafts accepted so far), one that may stop on eos inside a verify pass.
std::vector<engine::GenerateRequest> seeded_requests(const std::vector<std::vector<int32_t>>& prompts,
                                                     float temperature, float top_p) {
  std::vector<engine::GenerateRequest> reqs;
  for (int k = 0; k < 5; ++k) {
    engine::GenerateRequest r;
    r.prompt = prompts[k];
    r.max_tokens = 32;
    r.ignore_eos = k != 4;
    r.sampling.temperature = temperature;
    r.sampling.top_p = top_p;
    r.sampling.seed = 1234 + k;
    if (k == 3) {
      r.sampling.frequency_penalty = 0.4f;
      r.sampling.presence_penalty = 0.3f;
      r.sampling.repetition_penalty = 1.2f;
    }
    reqs.push_back(r);
  }
  return reqs;
}

/// Different requests submitted at the same time: greedy, unseeded, other parameters, logprobs, one that
/// opts out of speculation, and long prompts whose prefill chunks share steps with the verify rows.
std::vector<engine::GenerateRequest> other_requests(const std::vector<std::vector<int32_t>>& prompts) {
  std::vector<engine::GenerateRequest> reqs;
  for (int k = 0; k < 6; ++k) {
    engine::GenerateRequest r;
    r.prompt = prompts[10 + k];
    if (k >= 4)  // ~100-token prompts
      for (int j = 0; j < 2; ++j) r.prompt.insert(r.prompt.end(), prompts[20 + j].begin(), prompts[20 + j].end());
    r.max_tokens = 10 + 5 * k;
    r.ignore_eos = true;
    r.sampling.temperature = k == 0 ? 0.0f : 1.3f;
    r.sampling.top_k = 20;
    if (k == 2) r.sampling.seed = 1234;  // a compared request's seed, on another prompt
    r.top_logprobs = k == 3 ? 3 : -1;
    r.speculative = k != 5;
    reqs.push_back(r);
  }
  return reqs;
}

void check_identity(const std::filesystem::path& dir, const std::vector<engine::GenerateRequest>& seeded,
                    const std::vector<engine::GenerateRequest>& others) {
  auto be = test::make_test_backend(2);
  auto m = models::load_model(dir, {.with_draft = true, .draft_quant = {}}, *be);
  // A small token budget splits the long prompts into prefill chunks that share steps with verify rows.
  const engine::EngineOptions base{.max_running_requests = 16, .kv_cache_tokens = 16 * 256, .max_batch_tokens = 48,
                                   .max_model_len = 256};
  std::vector<engine::GenerateRequest> mixed;  // seeded and other requests interleaved
  std::vector<size_t> seeded_at;               // where each seeded request sits in `mixed`
  for (size_t i = 0; i < std::max(seeded.size(), others.size()); ++i) {
    if (i < others.size()) mixed.push_back(others[i]);
    if (i < seeded.size()) seeded_at.push_back(mixed.size()), mixed.push_back(seeded[i]);
  }
  auto seeded_of_mixed = [&](const GenRun& r) {
    std::vector<std::vector<int32_t>> out;
    for (size_t i : seeded_at) out.push_back(r.outputs[i]);
    return out;
  };

  // Reference: each seeded request alone, no speculation.
  std::vector<std::vector<int32_t>> alone;
  for (const auto& r : seeded) alone.push_back(generate(*m, *be, base, {r}).outputs[0]);
  EXPECT_EQ(seeded_of_mixed(generate(*m, *be, base, mixed)), alone) << "batched, no speculation";

  int64_t drafted = 0, accepted = 0;
  for (int K = 1; K <= 4; ++K) {
    engine::EngineOptions eo = base;
    eo.spec = {.enabled = true, .num_steps = K};
    for (size_t i = 0; i < seeded.size(); ++i) {
      const GenRun single = generate(*m, *be, eo, {seeded[i]});
      EXPECT_EQ(single.outputs[0], alone[i]) << "K=" << K << " seeded request " << i << " (alone)";
      drafted += single.finals[0].spec.draft_tokens;
      accepted += single.finals[0].spec.accepted_tokens;
    }
    const GenRun batched = generate(*m, *be, eo, mixed);
    const auto got = seeded_of_mixed(batched);
    for (size_t i = 0; i < seeded.size(); ++i)
      EXPECT_EQ(got[i], alone[i]) << "K=" << K << " seeded request " << i << " (batched)";
  }
  // K changing every step (0 included: paused steps defer the draft's extend), and the adaptive policy.
  for (const auto& spec : {engine::SpecOptions{.enabled = true, .num_steps = 4, .scripted_k = {0, 3, 1, 4, 0, 0, 2}},
                           engine::SpecOptions{.enabled = true, .num_steps = 3, .policy = engine::SpecPolicyKind::kAdaptive}}) {
    engine::EngineOptions eo = base;
    eo.spec = spec;
    const std::string what = spec.scripted_k.empty() ? "adaptive" : "scripted K";
    for (size_t i = 0; i < seeded.size(); ++i)
      EXPECT_EQ(generate(*m, *be, eo, {seeded[i]}).outputs[0], alone[i]) << what << " seeded request " << i;
    const auto got = seeded_of_mixed(generate(*m, *be, eo, mixed));
    for (size_t i = 0; i < seeded.size(); ++i) EXPECT_EQ(got[i], alone[i]) << what << " seeded request " << i << " (batched)";
  }
  // The speculative runs must have gone through both outcomes of verification.
  std::cout << dir.filename().string() << ": drafts accepted " << accepted << " of " << drafted << "\n";
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, drafted);
}

// The bundled model's trained draft at temperature 0.8, top_p 0.9: many drafts are accepted, so accepted
// runs and bonus tokens are exercised, not only corrections.
TEST(SeededIdentity, TrainedModelSpeculationOnAndOffGiveTheSameTokens) {
  const auto prompts = tiny_prompts();
  ASSERT_GE(prompts.size(), 22u);
  check_identity(test::source_dir() / "models" / "tandem-tiny", seeded_requests(prompts, 0.8f, 0.9f),
                 other_requests(prompts));
}

// A random fixture with a tiny vocabulary: drafts are mostly rejected, so corrections dominate. (At
// temperature 0.8 / top_p 0.9 its random draft's token is almost never in the nucleus; at 1.5 / 1.0 every
// token has mass, so some drafts are accepted too.)
TEST(SeededIdentity, SmallVocabularyFixtureSpeculationOnAndOffGiveTheSameTokens) {
  const auto dir = test::fixture_model("glm-v");
  test::Reference ref(dir);
  const auto p0 = ref.ints("p0.prompt_ids"), p1 = ref.ints("p1.prompt_ids");
  std::vector<std::vector<int32_t>> prompts;
  for (int k = 0; k < 22; ++k) {  // prompts of mixed lengths from the reference prompts (vocabulary 48)
    std::vector<int32_t> p = k % 2 ? p1 : p0;
    for (int j = 0; j <= k; ++j) p.push_back(static_cast<int32_t>((7 * k + 3 * j + 5) % 48));
    prompts.push_back(p);
  }
  check_identity(dir, seeded_requests(prompts, 1.5f, 1.0f), other_requests(prompts));
}

}  // namespace
