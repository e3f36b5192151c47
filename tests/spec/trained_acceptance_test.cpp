// The bundled model's trained NextN layer: tandem's acceptance lengths on held-out prompts are high, agree
// with the PyTorch reference of the training script (models/tandem-tiny/eval.json), and collapse when the
// draft is deliberately broken (concat order swapped).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <fstream>

#include "common/test_backend.h"
#include "common/fixtures.h"
#include "common/temp_dir.h"
#include "engine/engine.h"

using namespace tandem;

namespace {

std::filesystem::path tiny() { return test::source_dir() / "models" / "tandem-tiny"; }

nlohmann::json eval_json() {
  std::ifstream f(tiny() / "eval.json");
  return nlohmann::json::parse(f);
}

struct Acceptance {
  double al = 0;
  int64_t verify_steps = 0, completion = 0;
  std::vector<int64_t> prompt_verify_steps;         // per prompt of eval.json, in its order
  // Per prompt: its last token came from a plain decode. The draft length is capped so no step verifies past
  // max_tokens (spec/policy.h); the PyTorch reference verified K drafts for the final token too, so such a
  // prompt has exactly one verify step fewer than the reference, with the same tokens.
  std::vector<int> prompt_capped_last;
  int64_t capped_last = 0;
  std::vector<std::vector<int32_t>> prompt_tokens;  // per prompt: the completion
  bool collapsed = false;  // the engine's collapse alarm after the run (spec/collapse_alarm.h)
  std::array<int64_t, spec::kMaxDraftTokens + 1> k_hist{};  // decode steps per K used (usage.spec.drafts_per_step)
};

Acceptance measure(models::LoadedModel& m, ops::Backend& be, const nlohmann::json& ev, const engine::SpecOptions& spec);

Acceptance measure(models::LoadedModel& m, ops::Backend& be, const nlohmann::json& ev, int K) {
  return measure(m, be, ev, engine::SpecOptions{.enabled = true, .num_steps = K});
}

Acceptance measure(models::LoadedModel& m, ops::Backend& be, const nlohmann::json& ev, const engine::SpecOptions& spec) {
  // f32 KV: the reference ran in f32, and its counts are matched exactly (bf16 KV may flip a near-tie).
  engine::EngineOptions eo{.max_running_requests = 8, .kv_cache_tokens = 8 * 256, .max_model_len = 128,
                           .kv_cache_dtype = DType::kF32};
  eo.spec = spec;
  engine::Engine eng(m, be, eo);
  Acceptance a;
  a.prompt_verify_steps.resize(ev["prompts"].size());
  a.prompt_tokens.resize(ev["prompts"].size());
  a.prompt_capped_last.resize(ev["prompts"].size());
  std::vector<int64_t> steps_before(ev["prompts"].size(), 0);
  for (size_t i = 0; i < ev["prompts"].size(); ++i) {
    engine::GenerateRequest r;
    r.prompt = ev["prompts"][i].get<std::vector<int32_t>>();
    r.max_tokens = ev["max_new_tokens"].get<int>();
    r.sampling.temperature = 0.0f;
    r.ignore_eos = true;
    eng.submit(r, [&a, &steps_before, i](const engine::RequestOutput& o) {
      a.prompt_tokens[i].insert(a.prompt_tokens[i].end(), o.new_tokens.begin(), o.new_tokens.end());
      if (!o.finished()) {
        steps_before[i] = o.spec.verify_steps;
        return;
      }
      a.prompt_capped_last[i] = o.spec.verify_steps == steps_before[i] ? 1 : 0;
      a.capped_last += a.prompt_capped_last[i];
      a.verify_steps += o.spec.verify_steps;
      a.completion += o.completion_tokens;
      a.prompt_verify_steps[i] = o.spec.verify_steps;
      for (size_t k = 0; k < a.k_hist.size(); ++k) a.k_hist[k] += o.spec.drafted_hist[k];
    });
  }
  eng.run_until_idle();
  a.al = static_cast<double>(a.completion - a.k_hist[0]) / static_cast<double>(a.verify_steps);  // stats.h's AL
  a.collapsed = eng.snapshot().counters.spec_collapsed != 0;
  return a;
}

// docs/benchmarks.md: tandem's verify-step counts equal those of the training script's PyTorch reference
// (eval.json "spec"), so the two implementations accept the same drafts. Any difference is a bug (a verify or
// rollback off by one shifts the counts even when the mean acceptance length barely moves), so the counts
// must be identical, in total and per prompt ("per_prompt" holds each prompt's acceptance length to 4
// decimals: max_new_tokens / AL rounds to its verify steps), and the output must be the reference's greedy
// completion ("spec_equals_greedy": speculation never changes greedy output).
TEST(TrainedDraft, AcceptanceIsHighAndMatchesThePyTorchReference) {
  auto be = test::make_test_backend(2);
  auto m = models::load_model(tiny(), {.with_draft = true, .draft_quant = {}}, *be);
  const auto ev = eval_json();
  const int64_t max_new = ev["max_new_tokens"].get<int64_t>();
  const auto& greedy = ev["greedy_completions"];
  ASSERT_EQ(greedy.size(), ev["prompts"].size());
  for (int K = 1; K <= 3; ++K) {
    const std::string key = "K" + std::to_string(K);
    const Acceptance a = measure(*m, *be, ev, K);
    const auto& ref = ev["spec"][key];
    std::cout << "K=" << K << ": tandem AL " << a.al << " (" << a.completion << " tokens / " << a.verify_steps
              << " verify steps), PyTorch reference " << ref["al"] << " (" << ref["completion_tokens"]
              << " / " << ref["verify_steps"] << ")\n";
    EXPECT_EQ(a.completion, ref["completion_tokens"].get<int64_t>()) << key;
    EXPECT_EQ(a.verify_steps + a.capped_last, ref["verify_steps"].get<int64_t>()) << key;
    const auto& per_prompt = ev["per_prompt"][key];
    ASSERT_EQ(per_prompt.size(), a.prompt_verify_steps.size()) << key;
    for (size_t i = 0; i < per_prompt.size(); ++i) {
      const auto ref_steps = std::llround(static_cast<double>(max_new) / per_prompt[i].get<double>());
      EXPECT_EQ(a.prompt_verify_steps[i] + a.prompt_capped_last[i], ref_steps)
          << key << " prompt " << i << " (" << ev["prompt_ids"][i] << ")";
      EXPECT_EQ(a.prompt_tokens[i], greedy[i].get<std::vector<int32_t>>())
          << key << " prompt " << i << " (" << ev["prompt_ids"][i] << ")";
    }
    if (K == 1) {
      EXPECT_GE(a.al, 1.6);
    }
    if (K == 3) {
      EXPECT_GE(a.al, 2.0);
    }
  }
}

/// A copy of the bundled model whose draft concatenates [hidden, embedding] instead of [embedding, hidden]:
/// eh_proj's column halves and enorm / hnorm swapped.
void write_concat_swapped(const std::filesystem::path& out) {
  auto m0 = loader::Checkpoint::open(tiny());
  const int64_t N = m0->config()["num_hidden_layers"].get<int64_t>();
  const std::string p = "model.layers." + std::to_string(N) + ".";
  const loader::TensorInfo* enorm = m0->find(p + "enorm.weight");
  const loader::TensorInfo* hnorm = m0->find(p + "hnorm.weight");
  ASSERT_TRUE(enorm && hnorm);
  test::copy_checkpoint(tiny(), out, [&](const loader::TensorInfo& t, loader::SafetensorsWriter& w) {
    if (t.name == p + "enorm.weight") return w.add(t.name, hnorm->view());
    if (t.name == p + "hnorm.weight") return w.add(t.name, enorm->view());
    if (t.name != p + "eh_proj.weight") return w.add(t.name, t.view());
    const int64_t H = t.shape[0], es = static_cast<int64_t>(dtype_size(t.dtype));
    std::vector<uint8_t> swapped(t.nbytes);
    const auto* src = static_cast<const uint8_t*>(t.data);
    for (int64_t r = 0; r < H; ++r) {
      std::memcpy(&swapped[(r * 2 * H) * es], src + (r * 2 * H + H) * es, H * es);
      std::memcpy(&swapped[(r * 2 * H + H) * es], src + (r * 2 * H) * es, H * es);
    }
    w.add(t.name, t.dtype, t.shape, swapped.data());
  });
}

TEST(TrainedDraft, SwappingTheConcatOrderCollapsesAcceptance) {
  // Swapping eh_proj's column halves and enorm/hnorm is exactly a draft that concatenates
  // [hidden, embedding] instead of [embedding, hidden].
  test::TempDir tmp;
  write_concat_swapped(tmp.path());
  auto be = test::make_test_backend(2);
  auto good = models::load_model(tiny(), {.with_draft = true, .draft_quant = {}}, *be);
  auto broken = models::load_model(tmp.path(), {.with_draft = true, .draft_quant = {}}, *be);
  const auto ev = eval_json();
  const Acceptance good_run = measure(*good, *be, ev, 3), broken_run = measure(*broken, *be, ev, 3);
  const double al_good = good_run.al, al_broken = broken_run.al;
  std::cout << "K=3: trained draft AL " << al_good << ", concat-swapped draft AL " << al_broken << "\n";
  EXPECT_GT(al_good, 1.5);
  EXPECT_LT(al_broken, 1.0 + 0.5 * (al_good - 1.0));
  // The collapse alarm (a window of 64 verify steps; the run has ~2000) trips for the broken draft only.
  EXPECT_TRUE(broken_run.collapsed) << "broken draft, AL " << al_broken;
  EXPECT_FALSE(good_run.collapsed) << "trained draft, AL " << al_good;
}

// The adaptive policy on costs where drafting pays at good acceptance (each draft adds 15% of a plain step, as
// on a GPU at batch 1): with the trained draft it speculates nearly every step; with the broken draft it
// settles at K = 0 (probing K = 1 now and then), and the collapse alarm trips on the probes' verify steps.
TEST(TrainedDraft, AdaptivePolicySpeculatesWithTheTrainedDraftAndPausesWithABrokenOne) {
  test::TempDir tmp;
  write_concat_swapped(tmp.path());
  auto be = test::make_test_backend(2);
  auto good = models::load_model(tiny(), {.with_draft = true, .draft_quant = {}}, *be);
  auto broken = models::load_model(tmp.path(), {.with_draft = true, .draft_quant = {}}, *be);
  spec::CostTable costs(8, 3);
  for (size_t b = 0; b < costs.buckets().size(); ++b)
    for (int k = 0; k <= 3; ++k) costs.set(static_cast<int>(b), k, 1e-3 * (1.0 + 0.1 * k), 1e-3 * 0.05 * k);
  const engine::SpecOptions adaptive{.enabled = true, .num_steps = 3, .policy = engine::SpecPolicyKind::kAdaptive,
                                     .costs = costs, .refine_costs = false, .collapse_window = 16};
  const auto ev = eval_json();
  const Acceptance g = measure(*good, *be, ev, adaptive), b = measure(*broken, *be, ev, adaptive);
  auto steps = [](const Acceptance& a) {
    int64_t n = 0;
    for (int64_t x : a.k_hist) n += x;
    return n;
  };
  std::cout << "adaptive: trained draft AL " << g.al << ", K=0 steps " << g.k_hist[0] << " of " << steps(g)
            << "; broken draft K=0 steps " << b.k_hist[0] << " of " << steps(b) << " (K=1 " << b.k_hist[1] << ", K=2 "
            << b.k_hist[2] << ", K=3 " << b.k_hist[3] << ")\n";
  EXPECT_LT(g.k_hist[0], steps(g) / 10);
  EXPECT_GT(g.al, 2.0);
  EXPECT_FALSE(g.collapsed);
  EXPECT_GT(b.k_hist[0], steps(b) * 8 / 10);
  EXPECT_TRUE(b.collapsed);
}

}  // namespace
