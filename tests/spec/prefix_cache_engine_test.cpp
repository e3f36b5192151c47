// Prefix caching end to end in the engine: output is identical with the cache on and off (greedy and seeded
// sampling; single, concurrent and multi-turn requests; under preemption and eviction; with speculation), and
// the draft's acceptance after a hit equals its acceptance without the cache.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/fixtures.h"
#include "common/generate.h"
#include "common/test_backend.h"
#include "engine/engine.h"

using namespace tandem;

namespace {

/// Deterministic pseudo-random ids in [1, V).
std::vector<int32_t> tokens(int n, uint64_t seed, int64_t V) {
  std::vector<int32_t> t(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& v : t) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    v = static_cast<int32_t>(1 + x % static_cast<uint64_t>(V - 1));
  }
  return t;
}

std::vector<int32_t> cat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

engine::GenerateRequest request(std::vector<int32_t> prompt, int max_tokens, float temperature = 0.0f,
                                uint64_t seed = 0) {
  engine::GenerateRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = temperature;
  if (temperature > 0) r.sampling.seed = seed;
  r.ignore_eos = true;
  return r;
}

/// Runs requests one after another through one engine (so later ones can hit what earlier ones cached).
struct Sequential {
  std::vector<std::vector<int32_t>> outputs;
  std::vector<engine::RequestOutput> finals;
  engine::EngineSnapshot snapshot;
};
Sequential run_sequential(models::LoadedModel& m, ops::Backend& be, const engine::EngineOptions& eo,
                          const std::vector<engine::GenerateRequest>& reqs) {
  engine::Engine eng(m, be, eo);
  Sequential r;
  r.outputs.resize(reqs.size());
  r.finals.resize(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    eng.submit(reqs[i], [&r, i](const engine::RequestOutput& o) {
      r.outputs[i].insert(r.outputs[i].end(), o.new_tokens.begin(), o.new_tokens.end());
      if (o.finished()) r.finals[i] = o;
    });
    eng.run_until_idle();
  }
  r.snapshot = eng.snapshot();
  return r;
}

class PrefixCacheEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    be_ = test::make_test_backend(2);
    m_ = models::load_model(test::fixture_model("glm-a"), {.with_draft = true, .draft_quant = {}}, *be_);
    V_ = m_->config.vocab_size;
    base_ = engine::EngineOptions{.max_running_requests = 8, .kv_cache_tokens = 2048, .block_size = 4,
                                  .max_model_len = 128};
  }
  engine::EngineOptions with_cache(engine::EngineOptions eo) const {
    eo.enable_prefix_caching = true;
    return eo;
  }
  /// A shared system prompt, requests that extend it, and a second turn of the first conversation.
  std::vector<engine::GenerateRequest> conversation(float temperature = 0.0f) const {
    const auto system = tokens(22, 1, V_);
    std::vector<engine::GenerateRequest> reqs;
    reqs.push_back(request(cat(system, tokens(9, 2, V_)), 12, temperature, 11));
    reqs.push_back(request(cat(system, tokens(5, 3, V_)), 12, temperature, 12));
    reqs.push_back(request(system, 10, temperature, 13));
    reqs.push_back(request(cat(reqs[1].prompt, tokens(1, 4, V_)), 10, temperature, 14));  // one token longer
    return reqs;
  }
  std::unique_ptr<ops::Backend> be_;
  std::unique_ptr<models::LoadedModel> m_;
  int64_t V_ = 0;
  engine::EngineOptions base_;
};

TEST_F(PrefixCacheEngine, GreedyOutputIsIdenticalWithTheCacheOnAndOffWithAndWithoutSpeculation) {
  for (int K = 0; K <= 3; ++K) {
    engine::EngineOptions eo = base_;
    eo.spec = {.enabled = K > 0, .num_steps = std::max(K, 1)};
    auto reqs = conversation();
    // The second turn of the first conversation: its prompt holds the first turn's prompt and answer.
    const Sequential first = run_sequential(*m_, *be_, eo, {reqs[0]});
    reqs.push_back(request(cat(cat(reqs[0].prompt, first.outputs[0]), tokens(6, 5, V_)), 12));
    const Sequential off = run_sequential(*m_, *be_, eo, reqs);
    const Sequential on = run_sequential(*m_, *be_, with_cache(eo), reqs);
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(on.outputs[i], off.outputs[i]) << "K=" << K << " request " << i;
      EXPECT_EQ(off.finals[i].cached_tokens, 0);
      // Acceptance after a hit equals acceptance without the cache: the draft's KV came back with the target's.
      EXPECT_EQ(on.finals[i].spec.verify_steps, off.finals[i].spec.verify_steps) << "K=" << K << " request " << i;
      EXPECT_EQ(on.finals[i].spec.accepted_tokens, off.finals[i].spec.accepted_tokens) << "K=" << K << " request " << i;
    }
    EXPECT_EQ(on.finals[0].cached_tokens, 0);
    EXPECT_EQ(on.finals[1].cached_tokens, 20) << "the system prompt's 5 full blocks";
    EXPECT_EQ(on.finals[2].cached_tokens, 20) << "all of the system prompt but the block of its last token";
    EXPECT_EQ(on.finals[3].cached_tokens, 24) << "request 1's prompt, block by block";
    // Turn 2 finds turn 1's prompt and its generated tokens (where the backend gives both paths the same bits).
    const int64_t turn1 = static_cast<int64_t>(reqs[0].prompt.size());
    const int64_t want = be_->prefill_linear_differs() ? turn1 / 4 * 4 : (turn1 + 12 - 1) / 4 * 4;
    EXPECT_GE(on.finals[4].cached_tokens, want) << "K=" << K;
    EXPECT_GT(on.snapshot.counters.prefix_cache_hit_tokens, 0);
    EXPECT_EQ(on.snapshot.kv_blocks_used, 0);
    EXPECT_GT(on.snapshot.kv_blocks_cached, 0);
    if (K > 0) {
      EXPECT_GT(on.finals[1].spec.verify_steps, 0);
    }
  }
}

TEST_F(PrefixCacheEngine, ChunkedPrefillAfterAHitChangesNoOutput) {
  for (int K : {0, 2}) {
    engine::EngineOptions eo = base_;
    eo.max_batch_tokens = 7;  // prompts of 23-32 tokens prefill in chunks of at most 7 rows, hits or not
    eo.spec = {.enabled = K > 0, .num_steps = std::max(K, 1)};
    const auto reqs = conversation();
    engine::EngineOptions unchunked = base_;
    unchunked.spec = eo.spec;
    const Sequential off = run_sequential(*m_, *be_, unchunked, reqs);
    const Sequential on = run_sequential(*m_, *be_, with_cache(eo), reqs);
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(on.outputs[i], off.outputs[i]) << "K=" << K << " request " << i;
      EXPECT_EQ(on.finals[i].spec.accepted_tokens, off.finals[i].spec.accepted_tokens) << "K=" << K << " request " << i;
    }
    EXPECT_EQ(on.finals[1].cached_tokens, 20);
  }
}

TEST_F(PrefixCacheEngine, ConcurrentRequestsSharingPrefixesMatchTheirOutputsAlone) {
  for (int K : {0, 2}) {
    engine::EngineOptions eo = base_;
    eo.spec = {.enabled = K > 0, .num_steps = std::max(K, 1)};
    const auto reqs = conversation();
    std::vector<std::vector<int32_t>> alone;
    for (const auto& r : reqs) alone.push_back(test::generate(*m_, *be_, eo, {r}).outputs[0]);
    engine::Engine eng(*m_, *be_, with_cache(eo));
    for (int round = 0; round < 2; ++round) {  // round 0 fills the cache while they run; round 1 hits it
      std::vector<std::vector<int32_t>> outs(reqs.size());
      for (size_t i = 0; i < reqs.size(); ++i)
        eng.submit(reqs[i], [&outs, i](const engine::RequestOutput& o) {
          outs[i].insert(outs[i].end(), o.new_tokens.begin(), o.new_tokens.end());
        });
      eng.run_until_idle();
      for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(outs[i], alone[i]) << "K=" << K << " round " << round << " request " << i;
    }
    EXPECT_GT(eng.snapshot().counters.prefix_cache_hit_tokens, 0);
    EXPECT_EQ(eng.snapshot().kv_blocks_used, 0);
  }
}

TEST_F(PrefixCacheEngine, SeededSamplingIsIdenticalWithTheCacheOnAndOff) {
  for (int K : {0, 3}) {
    engine::EngineOptions eo = base_;
    eo.spec = {.enabled = K > 0, .num_steps = std::max(K, 1)};
    const auto reqs = conversation(0.9f);
    const Sequential off = run_sequential(*m_, *be_, eo, reqs);
    const Sequential on = run_sequential(*m_, *be_, with_cache(eo), reqs);
    for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(on.outputs[i], off.outputs[i]) << "K=" << K << " request " << i;
    EXPECT_GT(on.finals[1].cached_tokens, 0);
  }
}

TEST_F(PrefixCacheEngine, PreemptedRequestsFindTheirOwnBlocksAndChangeNoOutput) {
  for (int K : {0, 2}) {
    engine::EngineOptions roomy = base_;
    roomy.max_model_len = 64;
    roomy.spec = {.enabled = K > 0, .num_steps = std::max(K, 1)};
    const auto system = tokens(13, 7, V_);
    std::vector<engine::GenerateRequest> reqs;
    for (int i = 0; i < 8; ++i) reqs.push_back(request(cat(system, tokens(3 + i, 20 + i, V_)), 40));
    std::vector<std::vector<int32_t>> alone;
    for (const auto& r : reqs) alone.push_back(test::generate(*m_, *be_, roomy, {r}).outputs[0]);
    engine::EngineOptions tight = with_cache(roomy);
    tight.kv_cache_tokens = 128;  // two 64-token contexts for 8 running requests
    const test::GenRun r = test::generate(*m_, *be_, tight, reqs);
    for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(r.outputs[i], alone[i]) << "K=" << K << " request " << i;
    engine::Engine eng(*m_, *be_, tight);
    for (const auto& q : reqs) eng.submit(q, [](const engine::RequestOutput&) {});
    eng.run_until_idle();
    const auto snap = eng.snapshot();
    EXPECT_GT(snap.counters.preemptions, 0) << "K=" << K;
    EXPECT_GT(snap.counters.prefix_cache_hit_tokens, 0) << "K=" << K;
    EXPECT_EQ(snap.kv_blocks_used, 0) << "K=" << K;
  }
}

TEST_F(PrefixCacheEngine, EvictionUnderPressureStaysCorrectLeaksNothingAndKeepsRecentPrefixes) {
  engine::EngineOptions eo = with_cache(base_);
  eo.kv_cache_tokens = 128;  // 32 blocks of 4
  eo.max_model_len = 64;
  std::vector<engine::GenerateRequest> reqs;
  for (int i = 0; i < 10; ++i) reqs.push_back(request(tokens(21, 100 + i, V_), 8));  // 5 full blocks each + 8 out
  reqs.push_back(reqs[9]);  // the most recent prefix again
  reqs.push_back(reqs[0]);  // the oldest again
  const Sequential on = run_sequential(*m_, *be_, eo, reqs);
  for (size_t i = 0; i < reqs.size(); ++i)
    EXPECT_EQ(on.outputs[i], test::generate(*m_, *be_, base_, {reqs[i]}).outputs[0]) << "request " << i;
  EXPECT_EQ(on.finals[10].cached_tokens, 20) << "the most recent prefix is still cached";
  EXPECT_EQ(on.finals[11].cached_tokens, 0) << "the oldest was evicted";
  EXPECT_EQ(on.snapshot.kv_blocks_used, 0);
  EXPECT_GT(on.snapshot.kv_blocks_cached, 0);
  EXPECT_LE(on.snapshot.kv_blocks_cached, on.snapshot.kv_blocks_total);
}

TEST_F(PrefixCacheEngine, AHitWithoutTheDraftsKvKeepsTheDraftOrDropsItByPolicy) {
  const auto prompt = tokens(26, 9, V_);
  engine::GenerateRequest plain = request(prompt, 16);
  plain.speculative = false;
  const engine::GenerateRequest spec = request(prompt, 16);
  // Fixed K: the cached blocks lack the draft's KV, so the request takes none of them and speculates as without
  // the cache; its own blocks then replace them, and the next identical request hits with the draft's KV.
  engine::EngineOptions fixed = base_;
  fixed.spec = {.enabled = true, .num_steps = 2};
  const Sequential off = run_sequential(*m_, *be_, fixed, {plain, spec, spec});
  const Sequential on = run_sequential(*m_, *be_, with_cache(fixed), {plain, spec, spec});
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(on.outputs[i], off.outputs[i]) << "request " << i;
    EXPECT_EQ(on.finals[i].spec.accepted_tokens, off.finals[i].spec.accepted_tokens) << "request " << i;
    EXPECT_EQ(on.finals[i].spec.verify_steps, off.finals[i].spec.verify_steps) << "request " << i;
  }
  EXPECT_EQ(on.finals[1].cached_tokens, 0);
  EXPECT_EQ(on.finals[2].cached_tokens, 24);
  EXPECT_GT(on.finals[2].spec.verify_steps, 0);
  // Adaptive: the whole hit is taken and the request decodes plainly, as one the policy paused.
  engine::EngineOptions adaptive = fixed;
  adaptive.spec.policy = engine::SpecPolicyKind::kAdaptive;
  const Sequential ad = run_sequential(*m_, *be_, with_cache(adaptive), {plain, spec});
  EXPECT_EQ(ad.outputs[1], off.outputs[1]);
  EXPECT_EQ(ad.finals[1].cached_tokens, 24);
  EXPECT_EQ(ad.finals[1].spec.verify_steps, 0);
}

// The bundled model's trained NextN layer, whose acceptance is high: a hit must restore the draft's KV exactly
// (acceptance equal to the run without the cache, request by request), and a hit on blocks cached by a request
// without a draft state must not hand the draft KV it never wrote.
TEST(PrefixCacheTrained, AcceptanceAfterAHitEqualsAcceptanceWithoutTheCache) {
  const auto dir = test::source_dir() / "models" / "tandem-tiny";
  auto be = test::make_test_backend(2);
  auto m = models::load_model(dir, {.with_draft = true, .draft_quant = {}}, *be);
  std::ifstream f(dir / "eval.json");
  const nlohmann::json ev = nlohmann::json::parse(f);
  std::vector<engine::GenerateRequest> reqs;
  for (size_t i = 0; i < 4; ++i) {
    engine::GenerateRequest r = request(ev["prompts"][i].get<std::vector<int32_t>>(), 24);
    engine::GenerateRequest plain = r;
    plain.speculative = false;
    reqs.push_back(i % 2 == 0 ? r : plain);  // the first run caches with or without the draft's KV
    reqs.push_back(r);
    reqs.push_back(r);
  }
  engine::EngineOptions eo{.max_running_requests = 8, .kv_cache_tokens = 4096, .block_size = 4, .max_model_len = 128,
                           .kv_cache_dtype = DType::kF32};
  eo.spec = {.enabled = true, .num_steps = 3};
  const Sequential off = run_sequential(*m, *be, eo, reqs);
  eo.enable_prefix_caching = true;
  const Sequential on = run_sequential(*m, *be, eo, reqs);
  int64_t hits = 0, accepted = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(on.outputs[i], off.outputs[i]) << "request " << i;
    EXPECT_EQ(on.finals[i].spec.accepted_tokens, off.finals[i].spec.accepted_tokens) << "request " << i;
    EXPECT_EQ(on.finals[i].spec.verify_steps, off.finals[i].spec.verify_steps) << "request " << i;
    hits += on.finals[i].cached_tokens > 0;
    accepted += on.finals[i].spec.accepted_tokens;
  }
  EXPECT_GE(hits, 6) << "every repeat after a speculative first run hits";
  EXPECT_GT(accepted, 3 * 24) << "the trained draft accepts";
}

}  // namespace
