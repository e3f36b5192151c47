// Speculative decoding: exactness at temperature 0, distribution preservation when sampling (joint law of
// consecutive tokens), isolation of draft failures.
#include <gtest/gtest.h>

#include <map>

#include "common/test_backend.h"
#include "common/fixtures.h"
#include "common/model_runner.h"
#include "common/generate.h"
#include "engine/engine.h"
#include "sampling/rng.h"
#include "sampling/sampler.h"
#include "spec/verifier.h"

using namespace tandem;

namespace {

using test::generate;
using test::GenRun;

std::vector<engine::GenerateRequest> greedy_requests(const test::Reference& ref, int64_t V, int n_extra) {
  std::vector<engine::GenerateRequest> reqs;
  for (int k = 0; k < 2; ++k) {
    engine::GenerateRequest r;
    r.prompt = ref.ints("p" + std::to_string(k) + ".prompt_ids");
    r.max_tokens = 32;
    r.sampling.temperature = 0.0f;
    r.ignore_eos = true;
    reqs.push_back(r);
  }
  for (int k = 0; k < n_extra; ++k) {  // more prompts of mixed lengths
    engine::GenerateRequest r = reqs[k % 2];
    for (int j = 0; j <= k; ++j) r.prompt.push_back(static_cast<int32_t>((7 * k + 3 * j + 5) % V));
    r.max_tokens = 20 + 3 * k;
    reqs.push_back(r);
  }
  return reqs;
}

class GreedyExact : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(GreedyExact, SpeculationChangesNothingAtTemperatureZero) {
  const auto& [name, draft_quant] = GetParam();
  const auto dir = test::fixture_model(name);
  auto be = test::make_test_backend(2);
  auto m = models::load_model(dir, {.with_draft = true, .draft_quant = models::mtp::DraftQuantRequest::parse(draft_quant)}, *be);
  test::Reference ref(dir);
  const auto reqs = greedy_requests(ref, m->config.vocab_size, 4);
  engine::EngineOptions base{.max_running_requests = 8, .kv_cache_tokens = 2048, .max_model_len = 128};
  // Reference: each request alone, no speculation.
  std::vector<std::vector<int32_t>> alone;
  for (const auto& r : reqs) alone.push_back(generate(*m, *be, base, {r}).outputs[0]);
  for (int K = 1; K <= 4; ++K) {
    engine::EngineOptions eo = base;
    eo.spec = {.enabled = true, .num_steps = K};
    for (size_t i = 0; i < reqs.size(); ++i) {
      const GenRun single = generate(*m, *be, eo, {reqs[i]});
      EXPECT_EQ(single.outputs[0], alone[i]) << name << " K=" << K << " request " << i << " (single)";
      EXPECT_GT(single.finals[0].spec.verify_steps, 0);
    }
    const GenRun batched = generate(*m, *be, eo, reqs);
    for (size_t i = 0; i < reqs.size(); ++i)
      EXPECT_EQ(batched.outputs[i], alone[i]) << name << " K=" << K << " request " << i << " (batched)";
  }
  // K changing at every step of every request (0 included), alone and batched.
  engine::EngineOptions eo = base;
  eo.spec = {.enabled = true, .num_steps = 4, .scripted_k = {2, 0, 4, 1, 0, 3}};
  for (size_t i = 0; i < reqs.size(); ++i) {
    const GenRun single = generate(*m, *be, eo, {reqs[i]});
    EXPECT_EQ(single.outputs[0], alone[i]) << name << " scripted K, request " << i << " (single)";
    const auto& hist = single.finals[0].spec.drafted_hist;
    EXPECT_GT(hist[0], 0) << "paused steps";
    EXPECT_GT(hist[4], 0) << "K = 4 steps";
  }
  const GenRun batched = generate(*m, *be, eo, reqs);
  for (size_t i = 0; i < reqs.size(); ++i)
    EXPECT_EQ(batched.outputs[i], alone[i]) << name << " scripted K, request " << i << " (batched)";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GreedyExact,
                         ::testing::Values(std::make_tuple("glm-a", "auto"), std::make_tuple("glm-b", "auto"),
                                           std::make_tuple("glm-v", "auto"),
                                           std::make_tuple("glm-a-fp8-ct-channel", "auto"),
                                           std::make_tuple("glm-a-fp8-ct-channel", "unquant"),
                                           std::make_tuple("glm-a-fp8-ct-block", "auto"),
                                           std::make_tuple("glm-a-fp8-ds-block", "unquant")),
                         [](const auto& info) {
                           std::string s = std::get<0>(info.param) + "_" + std::get<1>(info.param);
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// Two-sample chi-square statistic over the cells where either sample has counts; cells whose combined count
// is below min_count are pooled into one (expected count per sample >= min_count / 2 at equal sizes, so the
// chi-square approximation holds for a sparse joint table), and that pool is dropped when it is itself
// below min_count. Returns (stat, dof).
std::pair<double, int> chi_square(const std::map<int64_t, int>& a, const std::map<int64_t, int>& b,
                                  int min_count = 10) {
  std::map<int64_t, std::pair<int, int>> raw, cells;
  for (const auto& [k, n] : a) raw[k].first = n;
  for (const auto& [k, n] : b) raw[k].second = n;
  std::pair<int, int> pool{0, 0};
  for (const auto& [k, c] : raw) {
    if (c.first + c.second >= min_count) cells[k] = c;
    else pool.first += c.first, pool.second += c.second;
  }
  if (pool.first + pool.second >= min_count) cells[-1] = pool;
  double na = 0, nb = 0;
  for (const auto& [k, c] : cells) na += c.first, nb += c.second;
  double stat = 0;
  const double ka = std::sqrt(nb / na), kb = std::sqrt(na / nb);
  for (const auto& [k, c] : cells) {
    const double d = ka * c.first - kb * c.second;
    stat += d * d / (c.first + c.second);
  }
  return {stat, static_cast<int>(cells.size()) - 1};
}

// Upper 0.1% point of chi-square with `dof` degrees of freedom (Wilson-Hilferty).
double chi_square_critical(int dof) {
  const double z = 3.090;  // standard normal 0.999 quantile
  const double k = dof;
  return k * std::pow(1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k)), 3);
}

// Joint counts of the token pairs (t[i], t[i + 1]) over samples, keyed t[i] * V + t[i + 1].
std::map<int64_t, int> pair_counts(const std::vector<std::vector<int32_t>>& samples, size_t i, int64_t V) {
  std::map<int64_t, int> m;
  for (const auto& s : samples) ++m[s[i] * V + s[i + 1]];
  return m;
}

// The joint law of consecutive tokens, not only each position's marginal: a verifier that kept every marginal
// but coupled a token to the one before it wrongly would pass a per-position test and fail this one.
TEST(SpecSampling, JointTokenPairDistributionIsUnchangedBySpeculation) {
  const auto dir = test::fixture_model("glm-v");
  auto be = test::make_test_backend(2);
  auto m = models::load_model(dir, {.with_draft = true, .draft_quant = {}}, *be);
  test::Reference ref(dir);
  const auto prompt = ref.ints("p0.prompt_ids");
  const int64_t V = m->config.vocab_size;
  const int n = 20000;
  auto sample_run = [&](bool spec, uint64_t seed0) {
    std::vector<engine::GenerateRequest> reqs(n);
    for (int i = 0; i < n; ++i) {
      reqs[i].prompt = prompt;
      reqs[i].max_tokens = 4;  // after the first token, two drafts fit (a verify emits up to K + 1)
      reqs[i].ignore_eos = true;
      reqs[i].sampling.temperature = 1.0f;
      reqs[i].sampling.top_p = 0.95f;
      reqs[i].sampling.seed = seed0 + i;
    }
    engine::EngineOptions eo{.max_running_requests = 256, .kv_cache_tokens = 256 * 32, .max_batch_tokens = 4096, .max_model_len = 32};
    eo.spec = {.enabled = spec, .num_steps = 2};
    return generate(*m, *be, eo, reqs);
  };
  // Different seeds: with the same seeds the two runs would agree token for token (seeded_identity_test.cpp),
  // which says nothing about the law.
  const GenRun plain = sample_run(false, 1000000);
  const GenRun spec = sample_run(true, 2000000);
  int64_t drafted = 0, accepted = 0;
  for (const auto& f : spec.finals) drafted += f.spec.draft_tokens, accepted += f.spec.accepted_tokens;
  std::cout << "drafts accepted " << accepted << " of " << drafted << "\n";
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, drafted);
  for (size_t i = 0; i < 3; ++i) {  // t0 comes from the prefill row; t1, t2 and t3 from verify rows (or plain)
    const auto [stat, dof] = chi_square(pair_counts(plain.outputs, i, V), pair_counts(spec.outputs, i, V));
    std::cout << "tokens (" << i << ", " << i + 1 << "): chi2 " << stat << " dof " << dof << " critical "
              << chi_square_critical(dof) << "\n";
    EXPECT_GT(dof, 50) << "too few cells for a joint test";
    EXPECT_LT(stat, chi_square_critical(dof)) << "tokens " << i << ", " << i + 1;
  }
}

// The same joint statistic, at the same sample size, rejects a wrong acceptance rule: accepting the draft
// token whenever the target gives it probability >= 10% (a "relaxed" rule) on the second token, with
// everything else exact. The pairs are (first token, second token) as in the test above.
TEST(SpecSampling, JointChiSquareRejectsAWrongAcceptanceRule) {
  const auto dir = test::fixture_model("glm-v");
  auto be = test::make_test_backend(2);
  auto m = models::load_model(dir, {.with_draft = true, .draft_quant = {}}, *be);
  test::Reference ref(dir);
  const auto prompt = ref.ints("p0.prompt_ids");
  const int64_t V = m->config.vocab_size;
  sampling::SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_p = 0.95f;
  // p0: first token distribution; for each first token t1: draft x(t1) and the target's logits l1(.|t1).
  test::SingleSequence base(*m, *be);
  const auto pre = base.target(prompt, 0);
  const auto p0 = sampling::target_distribution({pre.logits.ptr<float>() + (prompt.size() - 1) * V, size_t(V)}, sp);
  std::vector<int32_t> draft(V);
  std::vector<std::vector<float>> l1(V);
  for (int32_t t1 = 0; t1 < V; ++t1) {
    if (p0[t1] == 0.0f) continue;
    test::SingleSequence s(*m, *be);
    auto seq_tokens = prompt;
    seq_tokens.push_back(t1);
    const auto out = s.target(seq_tokens, 0);
    // Draft pairs (h_i, t_{i+1}) for i < n: the last one pairs the prompt's end with t1.
    const auto d = s.draft(std::vector<int32_t>(seq_tokens.begin() + 1, seq_tokens.end()), out.hidden.view().rows(0, seq_tokens.size() - 1), 0);
    draft[t1] = sampling::argmax({d.logits.ptr<float>() + (seq_tokens.size() - 2) * V, size_t(V)});
    const float* row = out.logits.ptr<float>() + (seq_tokens.size() - 1) * V;
    l1[t1].assign(row, row + V);
  }
  // Independent uniforms per stream (different seeds), one per output position as in the engine.
  const sampling::CounterRng first_rng(5), truth_rng(6), exact_rng(7), wrong_rng(8);
  const int n = 20000;
  std::map<int64_t, int> truth, exact, wrong;
  for (int i = 0; i < n; ++i) {
    const int32_t t1 = sampling::inverse_cdf(p0, first_rng.uniform(i));
    ++truth[t1 * V + sampling::sample(l1[t1], sp, truth_rng.uniform(i))];
    // One draft; row 1 would only give the bonus token, which this test does not look at.
    const auto row = [&](int, std::span<const int32_t>) { return l1[t1]; };
    const int32_t d = draft[t1];
    ++exact[t1 * V + spec::verify_chain(row, std::span<const int32_t>(&d, 1), sp, exact_rng, 2 * int64_t{i}).tokens[0]];
    const bool relaxed_accept = sampling::target_distribution(l1[t1], sp)[d] >= 0.1f;
    ++wrong[t1 * V + (relaxed_accept ? d : spec::verify_chain(row, std::span<const int32_t>(&d, 1), sp, wrong_rng, 2 * int64_t{i}).tokens[0])];
  }
  const auto [s_ok, d_ok] = chi_square(truth, exact);
  const auto [s_bad, d_bad] = chi_square(truth, wrong);
  std::cout << "exact rule chi2 " << s_ok << " (dof " << d_ok << ", critical " << chi_square_critical(d_ok)
            << "), relaxed rule chi2 " << s_bad << " (dof " << d_bad << ", critical " << chi_square_critical(d_bad) << ")\n";
  EXPECT_LT(s_ok, chi_square_critical(d_ok));
  EXPECT_GT(s_bad, chi_square_critical(d_bad));
}

TEST(SpecIsolation, AFailedDraftStepDoesNotAffectTheNextRequest) {
  const auto dir = test::fixture_model("glm-a");
  auto be = test::make_test_backend(2);
  auto m = models::load_model(dir, {.with_draft = true, .draft_quant = {}}, *be);
  test::Reference ref(dir);
  engine::GenerateRequest req;
  req.prompt = ref.ints("p0.prompt_ids");
  req.max_tokens = 24;
  req.sampling.temperature = 0.0f;
  req.ignore_eos = true;
  engine::EngineOptions eo{.max_running_requests = 4, .kv_cache_tokens = 1024, .max_model_len = 128};
  eo.spec = {.enabled = true, .num_steps = 3};
  const auto expected = generate(*m, *be, eo, {req}).outputs[0];

  int calls = 0;
  eo.before_draft_forward = [&calls] {
    if (++calls == 3) throw std::runtime_error("injected draft failure");
  };
  engine::Engine eng(*m, *be, eo);
  std::vector<engine::RequestOutput> finals(2);
  std::vector<std::vector<int32_t>> outs(2);
  for (int i = 0; i < 2; ++i) {
    eng.submit(req, [&, i](const engine::RequestOutput& o) {
      outs[i].insert(outs[i].end(), o.new_tokens.begin(), o.new_tokens.end());
      if (o.finished()) finals[i] = o;
    });
    eng.run_until_idle();
  }
  EXPECT_EQ(finals[0].finish, engine::FinishReason::kError);
  EXPECT_NE(finals[0].error.find("injected draft failure"), std::string::npos);
  EXPECT_EQ(finals[1].finish, engine::FinishReason::kLength);
  EXPECT_EQ(outs[1], expected);
  EXPECT_EQ(eng.snapshot().kv_blocks_used, 0);
}

}  // namespace

namespace {

// Preemption by recompute, made certain: 8 requests submitted together into a KV cache that holds about
// two of them. Each must return exactly what it returns alone, with and without speculation (a fixed K, and K
// changing every step so that preempted requests hold deferred draft pairs in the hidden stash).
TEST(Preemption, RecomputeUnderKvPressureChangesNoOutput) {
  const auto dir = test::fixture_model("glm-a");
  auto be = test::make_test_backend(2);
  auto m = models::load_model(dir, {.with_draft = true, .draft_quant = {}}, *be);
  test::Reference ref(dir);
  auto reqs = greedy_requests(ref, m->config.vocab_size, 6);
  for (auto& r : reqs) r.max_tokens = 40;
  for (int spec : {0, 1, 2}) {
    engine::EngineOptions roomy{.max_running_requests = 8, .kv_cache_tokens = 4096, .max_model_len = 64};
    roomy.spec = {.enabled = spec > 0, .num_steps = 3};
    if (spec == 2) roomy.spec.scripted_k = {0, 0, 2, 0, 3, 1};
    std::vector<std::vector<int32_t>> alone;
    for (const auto& r : reqs) alone.push_back(generate(*m, *be, roomy, {r}).outputs[0]);
    engine::EngineOptions tight = roomy;
    tight.kv_cache_tokens = 128;  // two 64-token contexts for 8 running requests
    engine::Engine eng(*m, *be, tight);
    std::vector<std::vector<int32_t>> outs(reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i)
      eng.submit(reqs[i], [&outs, i](const engine::RequestOutput& o) {
        outs[i].insert(outs[i].end(), o.new_tokens.begin(), o.new_tokens.end());
      });
    eng.run_until_idle();
    EXPECT_GT(eng.snapshot().counters.preemptions, 0) << "spec=" << spec;
    EXPECT_EQ(eng.snapshot().kv_blocks_used, 0);
    for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(outs[i], alone[i]) << "spec=" << spec << " request " << i;
  }
}

}  // namespace
