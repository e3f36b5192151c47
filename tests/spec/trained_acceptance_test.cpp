// The bundled model's trained NextN layer: tandem's acceptance lengths on held-out prompts are high, agree
// with the PyTorch reference of the training script (models/tandem-tiny/eval.json), and collapse when the
// draft is deliberately broken (concat order swapped).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

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
};

Acceptance measure(models::LoadedModel& m, ops::Backend& be, const nlohmann::json& ev, int K) {
  engine::EngineOptions eo{.max_running_requests = 8, .kv_cache_tokens = 8 * 256, .max_model_len = 128};
  eo.spec = {.enabled = true, .num_steps = K};
  engine::Engine eng(m, be, eo);
  Acceptance a;
  for (const auto& p : ev["prompts"]) {
    engine::GenerateRequest r;
    r.prompt = p.get<std::vector<int32_t>>();
    r.max_tokens = ev["max_new_tokens"].get<int>();
    r.sampling.temperature = 0.0f;
    r.ignore_eos = true;
    eng.submit(r, [&a](const engine::RequestOutput& o) {
      if (!o.finished()) return;
      a.verify_steps += o.spec.verify_steps;
      a.completion += o.completion_tokens;
    });
  }
  eng.run_until_idle();
  a.al = static_cast<double>(a.completion) / static_cast<double>(a.verify_steps);
  return a;
}

TEST(TrainedDraft, AcceptanceIsHighAndMatchesThePyTorchReference) {
  auto be = ops::make_cpu_backend(2);
  auto m = models::load_model(tiny(), {.with_draft = true, .draft_quant = {}}, *be);
  const auto ev = eval_json();
  for (int K = 1; K <= 3; ++K) {
    const Acceptance a = measure(*m, *be, ev, K);
    const double ref = ev["spec"]["K" + std::to_string(K)]["al"].get<double>();
    std::cout << "K=" << K << ": tandem AL " << a.al << " (" << a.completion << " tokens / " << a.verify_steps
              << " verify steps), PyTorch reference " << ref << "\n";
    EXPECT_NEAR(a.al, ref, 0.1) << "K=" << K;
    if (K == 1) {
      EXPECT_GE(a.al, 1.6);
    }
    if (K == 3) {
      EXPECT_GE(a.al, 2.0);
    }
  }
}

TEST(TrainedDraft, SwappingTheConcatOrderCollapsesAcceptance) {
  // Swapping eh_proj's column halves and enorm/hnorm is exactly a draft that concatenates
  // [hidden, embedding] instead of [embedding, hidden].
  test::TempDir tmp;
  auto m0 = loader::Checkpoint::open(tiny());
  const int64_t N = m0->config()["num_hidden_layers"].get<int64_t>();
  const std::string p = "model.layers." + std::to_string(N) + ".";
  const loader::TensorInfo* enorm = m0->find(p + "enorm.weight");
  const loader::TensorInfo* hnorm = m0->find(p + "hnorm.weight");
  ASSERT_TRUE(enorm && hnorm);
  test::copy_checkpoint(tiny(), tmp.path(), [&](const loader::TensorInfo& t, loader::SafetensorsWriter& w) {
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
  auto be = ops::make_cpu_backend(2);
  auto good = models::load_model(tiny(), {.with_draft = true, .draft_quant = {}}, *be);
  auto broken = models::load_model(tmp.path(), {.with_draft = true, .draft_quant = {}}, *be);
  const auto ev = eval_json();
  const double al_good = measure(*good, *be, ev, 3).al;
  const double al_broken = measure(*broken, *be, ev, 3).al;
  std::cout << "K=3: trained draft AL " << al_good << ", concat-swapped draft AL " << al_broken << "\n";
  EXPECT_GT(al_good, 1.5);
  EXPECT_LT(al_broken, 1.0 + 0.5 * (al_good - 1.0));
}

}  // namespace
