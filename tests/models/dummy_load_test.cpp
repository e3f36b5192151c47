// --load-format dummy and --json-model-override-args. Dummy weights have the real loader's shapes and dtypes
// for every checkpoint layout (bf16, compressed-tensors channel / block, DeepSeek fp8 block), live on the
// backend's device, give finite forwards through many layers (real widths included) and the same logits for
// the same seed; overrides change the layer count and reject keys tandem does not read; the memory plan
// refuses what does not fit before anything is allocated; and `tandem bench` runs from a folder holding only
// config.json. Registered on the cpu, fake-device and cuda backends (tests/common/test_backend.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <tuple>

#include "common/fixtures.h"
#include "common/model_runner.h"
#include "common/temp_dir.h"
#include "common/test_backend.h"
#include "common/run_cli.h"
#include "core/dtype.h"
#include "loader/dummy_weight_map.h"
#include "models/config_overrides.h"
#include "ops/fill_random.h"

using namespace tandem;
using ::testing::AnyOf;
using ::testing::HasSubstr;

namespace {

std::filesystem::path config_fixture(const std::string& name) {
  return test::source_dir() / "tests" / "fixtures" / "configs" / name;
}

/// A folder holding only `src`'s config.json: all --load-format dummy needs.
void copy_config_only(const std::filesystem::path& src, const test::TempDir& dst) {
  std::filesystem::copy_file(src / "config.json", dst.path() / "config.json");
}

std::unique_ptr<models::LoadedModel> load_dummy(const std::filesystem::path& dir, ops::Backend& be,
                                                nlohmann::json overrides = nullptr, uint64_t seed = 0,
                                                const std::string& draft_quant = "auto") {
  return models::load_model(dir,
                            {.with_draft = true,
                             .draft_quant = models::mtp::DraftQuantRequest::parse(draft_quant),
                             .load_format = models::LoadFormat::kDummy,
                             .config_overrides = std::move(overrides),
                             .dummy_seed = seed},
                            be);
}

// ---------------------------------------------------------------------------------------------------------
// Backend::fill_random's values (ops/fill_random.h)

/// f32 values that exercise the conversions: every sign, exponents from f32 subnormals to past e4m3's and
/// f16's ranges, random mantissas, and the boundary cases by hand.
std::vector<float> conversion_inputs() {
  std::vector<float> v = {
      0.0f,        -0.0f,       1.0f,     448.0f,       464.0f,          465.0f,       480.0f,    -1000.0f,
      0x1p-6f,     0x1p-9f,     0x1p-10f, 3 * 0x1p-11f, 0x1.1p-10f,      65504.0f,     65519.99f, 65520.0f,
      0x1p-14f,    0x1p-24f,    0x1p-25f, 0x1.8p-25f,   0x1.000002p-25f, 3 * 0x1p-26f, 1e-30f,    1e-40f,
      1.00390625f, 1.01171875f, 1.0625f,  1.1875f,      INFINITY,        -INFINITY};
  std::mt19937 rng(20251205);
  for (int i = 0; i < 400000; ++i) {
    const uint32_t sign = (rng() & 1u) << 31, exponent = 90 + rng() % 60, mantissa = rng() & 0x7fffffu;
    v.push_back(std::bit_cast<float>(sign | (exponent << 23) | mantissa));
    v.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));  // any pattern, NaNs included
  }
  return v;
}

TEST(FillRandomValues, ConversionsMatchTheCoreReferencesBitForBit) {
  for (float f : conversion_inputs()) {
    SCOPED_TRACE(fmt::format("{:a} (0x{:08x})", f, std::bit_cast<uint32_t>(f)));
    ASSERT_EQ(ops::fill_random::to_bf16(f), f32_to_bf16(f));
    ASSERT_EQ(ops::fill_random::to_f8e4m3(f), f32_to_f8e4m3(f));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(ops::fill_random::to_f16(f))));
    } else {
      const _Float16 h = static_cast<_Float16>(f);  // the compiler's round-to-nearest-even conversion
      ASSERT_EQ(ops::fill_random::to_f16(f), std::bit_cast<uint16_t>(h));
    }
  }
}

TEST(FillRandomValues, UniformInRangeSeededAndTheSameAsTheSharedDefinition) {
  auto be = test::make_test_backend(2);
  const int64_t n = 100003;  // odd: the threads' and blocks' chunks do not divide it
  Buffer a = be->alloc(DType::kF32, {n});
  be->fill_random(a.tensor(), 5, -2.0f, 3.0f);
  std::vector<float> v(static_cast<size_t>(n));
  be->to_host(a.tensor(), v.data());
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(v[i]),
              std::bit_cast<uint32_t>(ops::fill_random::uniform(5, i, -2.0f, 3.0f)))
        << i;
    ASSERT_GE(v[i], -2.0f);
    ASSERT_LE(v[i], 3.0f);
    mean += v[i] / static_cast<double>(n);
  }
  EXPECT_NEAR(mean, 0.5, 0.03);  // sd of the mean: 5 / sqrt(12 n) = 0.0046

  std::vector<float> w(v.size());
  be->fill_random(a.tensor(), 6, -2.0f, 3.0f);
  be->to_host(a.tensor(), w.data());
  int64_t same = 0;
  for (int64_t i = 0; i < n; ++i) same += v[i] == w[i];
  EXPECT_LT(same, 100);  // another seed, other values

  for (DType dt : {DType::kBF16, DType::kF16, DType::kF8E4M3}) {
    SCOPED_TRACE(dtype_name(dt));
    Buffer b = be->alloc(dt, {n});
    be->fill_random(b.tensor(), 9, -448.0f, 448.0f);
    std::vector<uint8_t> bytes(b.tensor().nbytes());
    be->to_host(b.tensor(), bytes.data());
    for (int64_t i = 0; i < n; ++i) {
      const float f = ops::fill_random::uniform(9, i, -448.0f, 448.0f);
      if (dt == DType::kF8E4M3) {
        ASSERT_EQ(bytes[i], ops::fill_random::to_f8e4m3(f)) << i;
      } else {
        uint16_t got;
        std::memcpy(&got, &bytes[2 * i], 2);
        ASSERT_EQ(got, dt == DType::kBF16 ? ops::fill_random::to_bf16(f) : ops::fill_random::to_f16(f)) << i;
      }
    }
  }
  Buffer ints = be->alloc(DType::kI32, {4});
  EXPECT_THROW(be->fill_random(ints.tensor(), 1, 0.0f, 1.0f), Error);
  EXPECT_THROW(be->fill_random(a.tensor(), 1, 1.0f, 0.0f), Error);
}

// ---------------------------------------------------------------------------------------------------------
// Dummy loads against the real loader

struct LinearKind {
  DType stored;
  ops::WeightQuant quant;
  bool dequantized;
  bool operator==(const LinearKind&) const = default;
};

/// Every Linear's stored dtype and running precision, by prefix; the NextN layer's own shared_head.head
/// (which the fixtures carry and a dummy checkpoint shares with the target, as GLM-4.6 / 4.7 ship) left out.
std::map<std::string, LinearKind> linear_kinds(const models::LoadedModel& m) {
  std::map<std::string, LinearKind> out;
  for (const auto& r : m.linears)
    if (!r.prefix.ends_with("shared_head.head")) out[r.prefix] = {r.stored, r.quant, r.dequantized};
  return out;
}

class DummyLoadLayouts : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(DummyLoadLayouts, ShapesAndDtypesMatchTheRealLoaderAndLiveOnTheDevice) {
  const auto& [fixture, draft_quant] = GetParam();
  auto be = test::make_test_backend(2);
  const auto real = models::load_model(
      test::fixture_model(fixture),
      {.with_draft = true, .draft_quant = models::mtp::DraftQuantRequest::parse(draft_quant)}, *be);
  test::TempDir dir;
  copy_config_only(test::fixture_model(fixture), dir);
  const auto dummy = load_dummy(dir.path(), *be, nullptr, 0, draft_quant);

  EXPECT_EQ(dummy->load_format, models::LoadFormat::kDummy);
  EXPECT_TRUE(dummy->checkpoint->tensor_names().empty());
  EXPECT_TRUE(dummy->unused_tensors.empty());
  const auto want = linear_kinds(*real), got = linear_kinds(*dummy);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [prefix, kind] : want) {
    ASSERT_TRUE(got.contains(prefix)) << prefix;
    EXPECT_EQ(got.at(prefix), kind) << prefix << ": dummy stored " << dtype_name(got.at(prefix).stored)
                                    << " quant " << static_cast<int>(got.at(prefix).quant);
  }
  // Weights, f32 scales and f32 biases of the same shapes: the same bytes (after load_linear made the
  // checkpoint's biases f32).
  EXPECT_EQ(dummy->target->total_weight_bytes(), real->target->total_weight_bytes());
  EXPECT_EQ(dummy->target->active_bytes_per_token(), real->target->active_bytes_per_token());
  for (const auto* m : {real.get(), dummy.get()}) {
    EXPECT_EQ(m->target->lm_head().weight.dtype, DType::kBF16);
    EXPECT_EQ(m->target->lm_head().weight.shape, (Shape{m->config.vocab_size, m->config.hidden_size}));
    EXPECT_EQ(m->target->embed_tokens().shape, (Shape{m->config.vocab_size, m->config.hidden_size}));
  }
  ASSERT_TRUE(dummy->draft);
  EXPECT_FALSE(dummy->draft->has_own_embed());
  EXPECT_FALSE(dummy->draft->has_own_head());
  EXPECT_EQ(dummy->draft_precision.stored, real->draft_precision.stored);
  EXPECT_EQ(dummy->draft_precision.running, real->draft_precision.running);
  // Made in the backend's memory, linears included (a device backend never saw a host copy).
  EXPECT_EQ(dummy->target->lm_head().weight.device.kind, be->device().kind);
  EXPECT_EQ(dummy->target->embed_tokens().device.kind, be->device().kind);
  for (const Buffer& b : dummy->owned) ASSERT_EQ(b.tensor().device.kind, be->device().kind);
  EXPECT_EQ(dummy->resident_weight_bytes(), [&] {
    size_t n = 0;
    for (const Buffer& b : dummy->owned) n += b.tensor().nbytes();
    return n;
  }());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DummyLoadLayouts,
                         ::testing::Values(std::tuple{"glm-a", "auto"},
                                           std::tuple{"glm-a-fp8-ct-channel", "auto"},
                                           std::tuple{"glm-a-fp8-ct-block", "auto"},
                                           std::tuple{"glm-a-fp8-ds-block", "auto"},
                                           std::tuple{"glm-a-fp8-ct-channel", "unquant"},
                                           std::tuple{"glm-a-fp8-ds-block", "unquant"}),
                         [](const auto& info) {
                           std::string s = std::get<0>(info.param) + "_" + std::get<1>(info.param);
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

// ---------------------------------------------------------------------------------------------------------
// Forward passes

/// Logits of the target over 5 tokens and of the draft over them, checked finite and not flat.
std::vector<float> forward_logits(models::LoadedModel& m, ops::Backend& be) {
  test::SingleSequence run(m, be, DType::kBF16);
  const std::vector<int32_t> tokens = {1, 7, 3, static_cast<int32_t>(m.config.vocab_size - 1), 42};
  const auto t = run.target(tokens, 0);
  std::vector<float> out(t.logits.ptr<float>(), t.logits.ptr<float>() + t.logits.tensor().numel());
  if (m.draft) {
    const auto d = run.draft({7, 3, 5, 9, 11}, t.hidden.view(), 0);
    out.insert(out.end(), d.logits.ptr<float>(), d.logits.ptr<float>() + d.logits.tensor().numel());
  }
  float lo = INFINITY, hi = -INFINITY;
  for (float x : out) {
    EXPECT_TRUE(std::isfinite(x));
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  EXPECT_GT(hi - lo, 1e-3f) << "flat logits: the residual stream collapsed";
  EXPECT_LT(hi - lo, 1e3f);
  return out;
}

TEST(DummyForward, FiftyLayersStayFiniteInEveryLayoutAndTheSeedDecidesTheLogits) {
  auto be = test::make_test_backend(2);
  for (const char* fixture : {"glm-a", "glm-a-fp8-ct-channel", "glm-a-fp8-ct-block", "glm-a-fp8-ds-block"}) {
    SCOPED_TRACE(fixture);
    test::TempDir dir;
    copy_config_only(test::fixture_model(fixture), dir);
    const nlohmann::json deep = {{"num_hidden_layers", 50}};
    auto a = load_dummy(dir.path(), *be, deep, 1);
    ASSERT_EQ(a->target->n_kv_layers(), 50);
    const std::vector<float> la = forward_logits(*a, *be);
    a.reset();
    auto again = load_dummy(dir.path(), *be, deep, 1);
    EXPECT_EQ(forward_logits(*again, *be), la);  // bit for bit
    again.reset();
    auto other = load_dummy(dir.path(), *be, deep, 2);
    EXPECT_NE(forward_logits(*other, *be), la);
  }
}

// GLM-4.7-FP8's real widths (hidden 5120, 96 query heads, expert width 1536, dense width 12288, fp8 channel
// scales) over one dense and one MoE layer; fewer experts and a smaller vocabulary keep it under 1 GB.
TEST(DummyForward, RealGlm47Fp8WidthsStayFinite) {
  auto be = test::make_test_backend(2);
  // A smaller vocabulary needs eos ids inside it (config.json validation refuses ids past vocab_size).
  const nlohmann::json small = {{"num_hidden_layers", 2}, {"first_k_dense_replace", 1},
                                {"n_routed_experts", 8},  {"num_experts_per_tok", 2},
                                {"vocab_size", 2048},     {"num_nextn_predict_layers", 0},
                                {"eos_token_id", 2047}};
  auto m = load_dummy(config_fixture("glm-4.7-fp8"), *be, small);
  EXPECT_EQ(m->config.hidden_size, 5120);
  EXPECT_FALSE(m->draft);
  forward_logits(*m, *be);
}

// ---------------------------------------------------------------------------------------------------------
// --json-model-override-args

TEST(ConfigOverrides, NumHiddenLayersMovesTheNextnLayerAndKeepsEveryLayersWeights) {
  auto be = test::make_test_backend(2);
  test::TempDir dir;
  copy_config_only(test::fixture_model("glm-a"), dir);
  auto one = load_dummy(dir.path(), *be, {{"num_hidden_layers", 1}});
  EXPECT_EQ(one->config.num_hidden_layers, 1);
  EXPECT_EQ(one->target->n_kv_layers(), 1);
  EXPECT_EQ(one->checkpoint->config().at("num_hidden_layers"), 1);
  EXPECT_EQ(one->mtp_prefix, "model.layers.1.");
  ASSERT_TRUE(one->draft);
  auto three = load_dummy(dir.path(), *be);
  EXPECT_EQ(three->config.num_hidden_layers, 3);
  EXPECT_EQ(three->mtp_prefix, "model.layers.3.");
  // A weight's values depend on its name and the seed only, not on how many layers were built.
  const auto host_bytes = [&](const Tensor& t) {
    std::vector<uint8_t> b(t.nbytes());
    be->to_host(t, b.data());
    return b;
  };
  EXPECT_EQ(host_bytes(one->target->lm_head().weight), host_bytes(three->target->lm_head().weight));
  EXPECT_EQ(host_bytes(one->target->embed_tokens()), host_bytes(three->target->embed_tokens()));
  auto reseeded = load_dummy(dir.path(), *be, {{"num_hidden_layers", 1}}, 1);
  EXPECT_NE(host_bytes(one->target->lm_head().weight), host_bytes(reseeded->target->lm_head().weight));
  EXPECT_NE(loader::DummyWeightMap::tensor_seed(0, "lm_head.weight"),
            loader::DummyWeightMap::tensor_seed(0, "model.norm.weight"));
}

TEST(ConfigOverrides, QuantizationAndDtypeOverridesChangeWhatIsMade) {
  auto be = test::make_test_backend(2);
  test::TempDir dir;
  copy_config_only(test::fixture_model("glm-a"), dir);
  std::ifstream f(test::fixture_model("glm-a-fp8-ct-block") / "config.json");
  const nlohmann::json fp8 = nlohmann::json::parse(f);
  auto q = load_dummy(dir.path(), *be, {{"quantization_config", fp8.at("quantization_config")}});
  EXPECT_EQ(q->quant.method, loader::QuantMethod::kCompressedTensors);
  EXPECT_EQ(linear_kinds(*q).at("model.layers.1.mlp.experts.0.up_proj").stored, DType::kF8E4M3);
  EXPECT_EQ(linear_kinds(*q).at("model.layers.1.mlp.gate").stored, DType::kBF16);  // routers stay unquantized
  auto h = load_dummy(dir.path(), *be, {{"dtype", "float16"}});
  EXPECT_EQ(h->target->lm_head().weight.dtype, DType::kF16);
  EXPECT_EQ(h->target->embed_tokens().dtype, DType::kF16);
  forward_logits(*h, *be);
}

TEST(ConfigOverrides, KeysTandemDoesNotReadAreErrorsNamingThem) {
  auto be = test::make_test_backend(1);
  test::TempDir dir;
  copy_config_only(test::fixture_model("glm-a"), dir);
  const auto error_of = [&](const nlohmann::json& overrides) {
    try {
      load_dummy(dir.path(), *be, overrides);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string typo = error_of({{"num_hiden_layers", 8}});
  EXPECT_THAT(typo, HasSubstr("--json-model-override-args"));
  EXPECT_THAT(typo, HasSubstr("'num_hiden_layers'"));
  EXPECT_THAT(typo, HasSubstr("num_hidden_layers"));  // the list of keys that may be overridden
  // glm-a keeps rope settings under rope_parameters: its top-level rope_theta is never read.
  EXPECT_THAT(error_of({{"rope_theta", 5.0}}), HasSubstr("'rope_theta'"));
  EXPECT_THAT(error_of({{"num_hidden_layers", "8"}}), HasSubstr("num_hidden_layers"));
  EXPECT_THAT(error_of({{"num_hidden_layers", 0}}), HasSubstr("num_hidden_layers"));

  EXPECT_TRUE(models::parse_config_overrides("").is_null());
  EXPECT_EQ(models::parse_config_overrides(R"({"num_hidden_layers": 8})").at("num_hidden_layers"), 8);
  EXPECT_THROW((void)models::parse_config_overrides("[1, 2]"), Error);
  EXPECT_THROW((void)models::parse_config_overrides("{num_hidden_layers: 8}"), Error);
}

// ---------------------------------------------------------------------------------------------------------
// The memory plan

TEST(DummyMemory, WhatDoesNotFitIsRefusedBeforeAnythingIsAllocated) {
  auto be = test::make_test_backend(1);
  const size_t available = be->available_memory_bytes();
  // GLM-4.7 in bf16 with its NextN layer: ~700 GB of weights.
  if (available == 0 || available > (size_t{1} << 40))
    GTEST_SKIP() << "this machine's memory is not below 1 TiB";
  try {
    load_dummy(config_fixture("glm-4.7"), *be);
    ADD_FAILURE() << "loading GLM-4.7 with dummy weights did not fail";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("nothing was allocated"));
    EXPECT_THAT(e.what(), HasSubstr("92 layers + the NextN draft"));
    EXPECT_THAT(e.what(), AnyOf(HasSubstr("\"num_hidden_layers\": "), HasSubstr("Not even one layer fits")));
  }
}

// ---------------------------------------------------------------------------------------------------------
// The CLI

using test::CliResult;
using test::run_tandem;

std::string device_flag() {
  return " --device " + test::test_device() + " --threads 2";
}

/// The JSON object `bench --json` prints, out of output that has log lines around it.
nlohmann::json bench_json(const std::string& out) {
  const size_t begin = out.find("{\n"), end = out.rfind("\n}");
  if (begin == std::string::npos || end == std::string::npos || end < begin) return nullptr;
  return nlohmann::json::parse(out.substr(begin, end + 2 - begin));
}

TEST(DummyCli, BenchRunsFromAFolderHoldingOnlyConfigJson) {
  test::TempDir dir;
  copy_config_only(test::fixture_model("glm-a"), dir);
  const CliResult r = run_tandem("bench --load-format dummy --model " + dir.path().string() + device_flag() +
                                 " --json-model-override-args '{\"num_hidden_layers\": 2}'"
                                 " --prompt-len 16 --decode-tokens 8 --repeats 1 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = bench_json(r.out);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j.at("load_format"), "dummy");
  EXPECT_EQ(j.at("config_overrides").at("num_hidden_layers"), 2);
  EXPECT_GT(j.at("decode").at("tokens_per_s").get<double>(), 0.0);
  EXPECT_TRUE(j.contains("speculative"));  // the NextN layer (now layer 2) drafts
}

// GLM-4.5-Air with one decoder layer (a dense one: first_k_dense_replace = 1) plus its NextN layer (128
// routed experts, ~4.4 GB bf16): it runs where the memory allows, else the memory plan refuses it up front.
TEST(DummyCli, OneLayerOfGlm45AirRunsOrIsRefusedByTheMemoryPlan) {
  // About a minute on a 2-core CPU with 8 GB free; the fake device adds nothing the glm-a run above lacks.
  if (test::test_device() == "fake") GTEST_SKIP() << "runs on the cpu and cuda registrations";
  const CliResult r =
      run_tandem("bench --load-format dummy --model " + config_fixture("glm-4.5-air").string() +
                 device_flag() + " --json-model-override-args '{\"num_hidden_layers\": 1}'" +
                 " --prompt-len 4 --decode-tokens 2 --repeats 1 --json");
  if (r.code == 0) {
    const nlohmann::json j = bench_json(r.out);
    ASSERT_TRUE(j.is_object()) << r.out;
    EXPECT_EQ(j.at("load_format"), "dummy");
    EXPECT_TRUE(std::isfinite(j.at("prefill").at("tokens_per_s").get<double>()));
  } else {
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_THAT(r.out, HasSubstr("nothing was allocated")) << r.out;
  }
}

TEST(DummyCli, FlagErrorsAndAMissingTokenizerAreClear) {
  test::TempDir dir;
  copy_config_only(test::fixture_model("glm-a"), dir);
  const std::string model = " --model " + dir.path().string() + device_flag();
  CliResult r = run_tandem("bench --load-format lazy" + model);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("--load-format"));
  r = run_tandem("bench --load-format dummy --json-model-override-args '{\"num_layers\": 2}'" + model);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("'num_layers'"));
  r = run_tandem("bench --load-format dummy --json-model-override-args 'num_hidden_layers=2'" + model);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("--json-model-override-args"));
  r = run_tandem("serve --load-format dummy --port 0" + model);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("tokenizer.json"));
}

}  // namespace
