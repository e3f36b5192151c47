// `tandem quantize` reproduces the FP8 fixtures that tools/make_fixtures.py wrote with PyTorch, byte for
// byte, and its config round-trips through QuantConfig.
#include <gtest/gtest.h>

#include <cstring>

#include "common/fixtures.h"
#include "common/model_runner.h"
#include "common/temp_dir.h"
#include "loader/checkpoint.h"
#include "loader/quant_config.h"
#include "quant/quantize_checkpoint.h"

using namespace tandem;

namespace {

struct Case {
  const char* fixture;
  quant::Fp8Strategy strategy;
  quant::CheckpointFormat format;
};

class Quantize : public ::testing::TestWithParam<Case> {};

TEST_P(Quantize, MatchesThePyTorchFixtureByteForByte) {
  const Case c = GetParam();
  test::TempDir tmp;
  const auto out = tmp.path() / "q";
  const auto rep = quant::quantize_checkpoint(test::fixture_model("glm-a"), out,
                                              {.strategy = c.strategy, .block = 128, .format = c.format});
  EXPECT_GT(rep.quantized, 0);
  auto mine = loader::Checkpoint::open(out);
  auto want = loader::Checkpoint::open(test::fixture_model(c.fixture));
  EXPECT_EQ(mine->tensor_names(), want->tensor_names());
  for (const auto& name : want->tensor_names()) {
    const auto* a = mine->find(name);
    const auto* b = want->find(name);
    ASSERT_NE(a, nullptr) << name;
    EXPECT_EQ(a->dtype, b->dtype) << name;
    EXPECT_EQ(a->shape, b->shape) << name;
    if (a->nbytes == b->nbytes) {
      EXPECT_EQ(std::memcmp(a->data, b->data, a->nbytes), 0) << name << " bytes differ";
    }
  }
  const auto qa = loader::QuantConfig::from_hf(mine->config());
  const auto qb = loader::QuantConfig::from_hf(want->config());
  EXPECT_EQ(qa.method, qb.method);
  EXPECT_EQ(qa.weight_strategy, qb.weight_strategy);
  EXPECT_EQ(qa.block_out, qb.block_out);
  EXPECT_EQ(qa.ignore, qb.ignore);
  // Round trip: to_hf of the parsed config parses to the same settings.
  const auto rt = loader::QuantConfig::from_hf({{"quantization_config", qa.to_hf()}});
  EXPECT_EQ(rt.method, qa.method);
  EXPECT_EQ(rt.weight_strategy, qa.weight_strategy);
  EXPECT_EQ(rt.ignore, qa.ignore);

  // The quantized copy loads in tandem and matches the fixture's transformers reference.
  auto be = ops::make_cpu_backend(2);
  auto m = models::load_model(out, {.with_draft = true, .draft_quant = {}}, *be);
  ASSERT_TRUE(m->draft);
  EXPECT_NE(m->draft_precision.running.find("fp8"), std::string::npos) << m->draft_precision.running;
  test::Reference ref(test::fixture_model(c.fixture));
  const auto prompt = ref.ints("p0.prompt_ids");
  test::SingleSequence seq(*m, *be);
  const auto o = seq.target(prompt, 0);
  const auto logits = ref.floats("p0.last_logits");
  const int64_t V = m->config.vocab_size;
  EXPECT_LE(test::max_abs_diff(o.logits.ptr<float>() + (prompt.size() - 1) * V, logits.data(), V), 2e-3f);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, Quantize,
    ::testing::Values(Case{"glm-a-fp8-ct-channel", quant::Fp8Strategy::kChannel, quant::CheckpointFormat::kCompressedTensors},
                      Case{"glm-a-fp8-ct-block", quant::Fp8Strategy::kBlock, quant::CheckpointFormat::kCompressedTensors},
                      Case{"glm-a-fp8-ds-block", quant::Fp8Strategy::kBlock, quant::CheckpointFormat::kDeepSeekFp8}),
    [](const auto& info) {
      std::string s = info.param.fixture;
      std::replace(s.begin(), s.end(), '-', '_');
      return s;
    });

TEST(Quantize, DraftPrecisionPolicyIsExplicitAndVisible) {
  auto be = ops::make_cpu_backend(1);
  const auto dir = test::fixture_model("glm-a-fp8-ct-channel");
  auto m = models::load_model(dir, {.with_draft = true, .draft_quant = models::mtp::DraftQuantRequest::parse("auto")}, *be);
  EXPECT_EQ(m->draft_precision.load, loader::LinearLoad::kAsStored);
  EXPECT_NE(m->draft_precision.stored.find("fp8"), std::string::npos);
  EXPECT_EQ(m->draft_precision.running, m->draft_precision.stored);
  auto u = models::load_model(dir, {.with_draft = true, .draft_quant = models::mtp::DraftQuantRequest::parse("unquant")}, *be);
  EXPECT_EQ(u->draft_precision.load, loader::LinearLoad::kDequantize);
  EXPECT_EQ(u->draft_precision.running, "bf16");
  EXPECT_THROW(models::load_model(dir, {.with_draft = true, .draft_quant = models::mtp::DraftQuantRequest::parse("fp8")}, *be), Error);
  EXPECT_THROW(models::mtp::DraftQuantRequest::parse("int4"), Error);
  auto bf = models::load_model(test::fixture_model("glm-a"), {.with_draft = true, .draft_quant = {}}, *be);
  EXPECT_EQ(bf->draft_precision.running, "bf16");
}

}  // namespace
