// Memory planning from config.json alone: weights against the published parameter counts of the full-size
// GLM-4.x releases (tests/fixtures/configs), KV bytes per token by formula, budgets, `tandem inspect --plan`
// on each config through the real binary, and an engine that lowers max_model_len to what its KV budget
// holds.
#include "models/memory_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/fixtures.h"
#include "common/temp_dir.h"
#include "common/run_cli.h"
#include "engine/engine.h"
#include "models/kv_scales.h"

using namespace tandem;
using ::testing::HasSubstr;

namespace {

std::filesystem::path config_dir(const std::string& name) {
  return test::source_dir() / "tests" / "fixtures" / "configs" / name;
}

nlohmann::json read_json(const std::filesystem::path& file) {
  std::ifstream f(file);
  return nlohmann::json::parse(f);
}

nlohmann::json read_config(const std::string& name) {
  return read_json(config_dir(name) / "config.json");
}

struct Parsed {
  models::glm4_moe::Glm4MoeConfig config;
  loader::QuantConfig quant;
};

Parsed parse(const std::string& name) {
  const auto j = read_config(name);
  return {models::glm4_moe::Glm4MoeConfig::from_hf(j), loader::QuantConfig::from_hf(j)};
}

models::MemoryPlan plan(const std::string& name, DType kv = DType::kBF16, bool draft = true) {
  const Parsed p = parse(name);
  return models::plan_memory(p.config, p.quant,
                             {.kv_dtype = kv, .with_draft = draft, .weight_dtype = DType::kBF16});
}

constexpr std::array<const char*, 4> kConfigs = {"glm-4.5", "glm-4.5-air", "glm-4.6", "glm-4.7"};

// Published totals are rounded to about 1% (355B, 106B, 32B, 12B), and model cards differ on whether the
// NextN layer is counted: 2% for totals, 8% for active counts (which also differ on embedding / head
// accounting).
constexpr double kTotalTol = 0.02;
constexpr double kActiveTol = 0.08;

TEST(MemoryPlan, WeightsMatchPublishedParameterCounts) {
  // GLM-4.5: 355B total including the NextN layer (GLM-4.5 report; HF lists 358B with the NextN copies of
  // embed_tokens / shared_head.head), 32B active.
  const auto g45 = plan("glm-4.5");
  const double total45 = static_cast<double>(g45.target.params + g45.draft.params);
  EXPECT_NEAR(total45 / 355e9, 1.0, kTotalTol) << total45;
  EXPECT_NEAR(g45.target_active_params / 32e9, 1.0, kActiveTol) << g45.target_active_params;
  // GLM-4.5-Air: 106B total (the main model; the NextN layer adds ~2.4B), 12B active.
  const auto air = plan("glm-4.5-air");
  EXPECT_NEAR(air.target.params / 106e9, 1.0, kTotalTol) << air.target.params;
  EXPECT_NEAR(air.target_active_params / 12e9, 1.0, kActiveTol) << air.target_active_params;
  // GLM-4.6 / 4.7 share GLM-4.5's shapes.
  for (const char* n : {"glm-4.6", "glm-4.7"}) {
    const auto p = plan(n);
    EXPECT_EQ(p.target.params, g45.target.params) << n;
    EXPECT_EQ(p.draft.params, g45.draft.params) << n;
  }
  std::cout << "GLM-4.5 target " << g45.target.params << " + draft " << g45.draft.params << " params, active "
            << g45.target_active_params << "; Air target " << air.target.params << " + draft "
            << air.draft.params << ", active " << air.target_active_params << "\n";
}

TEST(MemoryPlan, Bf16WeightBytesAreTwoPerParameterExceptTheF32RouterBias) {
  for (const char* n : kConfigs) {
    const Parsed p = parse(n);
    const auto pl = plan(n);
    const int64_t moe_layers = p.config.num_hidden_layers - p.config.first_k_dense_replace;
    // e_score_correction_bias [E] per MoE layer is held in f32: 2 more bytes per element.
    EXPECT_EQ(pl.target.bytes,
              2 * static_cast<size_t>(pl.target.params) + 2 * moe_layers * p.config.n_routed_experts)
        << n;
    EXPECT_EQ(pl.draft.bytes, 2 * static_cast<size_t>(pl.draft.params) + 2 * p.config.n_routed_experts) << n;
  }
}

TEST(MemoryPlan, Fp8ChannelWeightsAreOneBytePlusF32RowScales) {
  const Parsed p = parse("glm-4.7-fp8");
  ASSERT_EQ(p.quant.method, loader::QuantMethod::kCompressedTensors);
  const auto fp8 = models::plan_memory(p.config, p.quant, {.with_draft = true});
  const auto bf16 = plan("glm-4.7");
  EXPECT_EQ(fp8.target.params, bf16.target.params);
  // Independent closed form for the target (ignore list: lm_head, routers, eh_proj, shared_head.head).
  const auto& c = p.config;
  const int64_t H = c.hidden_size, Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, D = c.head_dim;
  const int64_t V = c.vocab_size, E = c.n_routed_experts, Im = c.moe_intermediate_size,
                I = c.intermediate_size;
  const int64_t L = c.num_hidden_layers, dense = c.first_k_dense_replace, moe = L - dense;
  const int64_t attn_w = (Hq * D + 2 * Hkv * D) * H + H * Hq * D, attn_rows = Hq * D + 2 * Hkv * D + H;
  const int64_t attn_plain = (Hq * D + 2 * Hkv * D) /*bias*/ + 2 * D /*qk norm*/ + 2 * H /*layer norms*/;
  const int64_t mlp_w = 3 * I * H, mlp_rows = 2 * I + H;
  const int64_t experts = E + c.n_shared_experts;  // shared expert width Im x 1
  const int64_t moe_w = experts * 3 * Im * H, moe_rows = experts * (2 * Im + H);
  const size_t fp8_bytes = static_cast<size_t>(L * attn_w + dense * mlp_w + moe * moe_w);
  const size_t scale_bytes = 4 * static_cast<size_t>(L * attn_rows + dense * mlp_rows + moe * moe_rows);
  const size_t bf16_bytes = 2 * static_cast<size_t>(L * attn_plain + moe * E * H /*router*/ + 2 * V * H + H);
  const size_t f32_bytes = 4 * static_cast<size_t>(moe * E);
  EXPECT_EQ(fp8.target.bytes, fp8_bytes + scale_bytes + bf16_bytes + f32_bytes);
  EXPECT_GT(static_cast<double>(fp8.target.bytes) / bf16.target.bytes, 0.50);
  EXPECT_LT(static_cast<double>(fp8.target.bytes) / bf16.target.bytes, 0.51);
}

TEST(MemoryPlan, KvBytesPerTokenByFormula) {
  for (const char* n : kConfigs) {
    const Parsed p = parse(n);
    const size_t L = p.config.num_hidden_layers, Hkv = p.config.num_key_value_heads, D = p.config.head_dim;
    for (DType kv : {DType::kF32, DType::kBF16, DType::kF8E4M3}) {
      const auto pl = plan(n, kv);
      EXPECT_EQ(pl.kv_bytes_per_token_target, L * 2 * Hkv * D * dtype_size(kv)) << n;
      EXPECT_EQ(pl.kv_bytes_per_token_draft, 1 * 2 * Hkv * D * dtype_size(kv)) << n;
      EXPECT_EQ(pl.kv_fixed_bytes, kv == DType::kF8E4M3 ? 2 * (L + 1) * Hkv * sizeof(float) : 0) << n;
      const auto plain = plan(n, kv, /*draft=*/false);
      EXPECT_EQ(plain.kv_bytes_per_token(), pl.kv_bytes_per_token_target) << n;
      EXPECT_EQ(plain.draft.params, 0) << n;
    }
  }
  // GLM-4.5 in f32 is the 736 KiB per token the f32-only cache used to cost.
  EXPECT_EQ(plan("glm-4.5", DType::kF32).kv_bytes_per_token_target, 736u * 1024);
  EXPECT_EQ(plan("glm-4.5", DType::kBF16).kv_bytes_per_token(), 376832u + 4096u);
}

TEST(MemoryPlan, BudgetsBuyWholeBlocksAndCapAtTheModelLength) {
  auto pl = plan("glm-4.5-air", DType::kBF16);
  const size_t per_block = pl.kv_bytes_per_token() * 16;
  const auto f = models::fit_kv_bytes(pl, 10 * per_block + per_block / 2);
  EXPECT_EQ(f.kv_tokens, 160);
  EXPECT_EQ(f.max_model_len, 160 - 4);  // a request reserves K + 1 = 4 draft / verify slots
  EXPECT_EQ(models::fit_kv_bytes(pl, per_block - 1).kv_tokens, 0);
  EXPECT_EQ(models::fit_kv_bytes(pl, per_block - 1).max_model_len, 0);
  EXPECT_EQ(models::fit_kv_bytes(pl, size_t{1} << 40).max_model_len, 131072);  // capped
  // A device that cannot hold the weights has no KV; one that can has weights + workspace + KV <= total.
  EXPECT_EQ(models::fit_total_memory(plan("glm-4.5"), size_t{80} << 30).kv_tokens, 0);
  const Parsed fp8 = parse("glm-4.7-fp8");
  const auto p47 = models::plan_memory(fp8.config, fp8.quant, {});
  EXPECT_EQ(models::fit_total_memory(p47, size_t{141} << 30).kv_tokens, 0);  // ~330 GiB of fp8 weights
  const size_t total = size_t{512} << 30;
  const auto big = models::fit_total_memory(p47, total);
  EXPECT_GT(big.kv_tokens, 0);
  EXPECT_LE(p47.weight_bytes() + p47.workspace_bytes +
                static_cast<size_t>(big.kv_tokens) * p47.kv_bytes_per_token(),
            total);
}

TEST(MemoryPlan, KvSizingFromTokensBytesOrHostMemory) {
  const models::KvBudgetRequest base{.mem_fraction = 0.5,
                                     .weight_bytes = size_t{1} << 30,
                                     .workspace_bytes = size_t{1} << 30,
                                     .kv_bytes_per_token = 1024,
                                     .block_size = 16,
                                     .max_running_requests = 64,
                                     .max_model_len = 100'000,
                                     .request_slack = 4};
  // Host memory: 0.5 x 10 GiB - 1 GiB weights - 1 GiB workspace = 3 GiB of K/V at 1 KiB per token.
  auto r = base;
  r.host_available = size_t{10} << 30;
  auto b = models::size_kv_cache(r);
  EXPECT_EQ(b.kv_tokens, int64_t{3} << 20);
  EXPECT_EQ(b.max_model_len, 100'000);
  EXPECT_FALSE(b.lowered);
  // More than max_running_requests full-length requests need is not allocated (rounded up to a block).
  r.host_available = size_t{1} << 40;
  EXPECT_EQ(models::size_kv_cache(r).kv_tokens, (64 * 100'004 + 15) / 16 * 16);
  EXPECT_THAT(models::size_kv_cache(r).source, HasSubstr("capped"));
  // An explicit byte budget (fp8 scales come off the top), and one too small for a full-length request.
  r = base;
  r.kv_cache_memory = 64 * 1024 + 100;
  r.kv_fixed_bytes = 100;
  b = models::size_kv_cache(r);
  EXPECT_EQ(b.kv_tokens, 64);
  EXPECT_TRUE(b.lowered);
  EXPECT_EQ(b.max_model_len, 60);
  // Explicit tokens win over bytes; a budget below one block, or below a 2-token request, is an error.
  r.kv_cache_tokens = 20;
  EXPECT_EQ(models::size_kv_cache(r).kv_tokens, 32);  // whole blocks
  r.kv_cache_tokens = 5;
  r.request_slack = 15;  // one 16-token block leaves 1 token beside 15 draft slots
  EXPECT_THROW((void)models::size_kv_cache(r), Error);
  r = base;
  r.kv_cache_memory = 100;
  try {
    (void)models::size_kv_cache(r);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("--kv-cache-memory"));
  }
}

TEST(MemoryPlan, ParsesByteSizesAndWeightDtypes) {
  EXPECT_EQ(models::parse_byte_size("80GiB", "m"), size_t{80} << 30);
  EXPECT_EQ(models::parse_byte_size("24 GB", "m"), size_t{24'000'000'000});
  EXPECT_EQ(models::parse_byte_size("512MiB", "m"), size_t{512} << 20);
  EXPECT_EQ(models::parse_byte_size("1.5g", "m"), size_t{3} << 29);
  EXPECT_EQ(models::parse_byte_size("1e9", "m"), size_t{1'000'000'000});
  EXPECT_EQ(models::parse_byte_size("4096", "m"), size_t{4096});
  EXPECT_THROW((void)models::parse_byte_size("80 gigs", "m"), Error);
  EXPECT_THROW((void)models::parse_byte_size("-1GiB", "m"), Error);
  EXPECT_THROW((void)models::parse_byte_size("", "m"), Error);
  EXPECT_EQ(models::weight_dtype_from_config(nlohmann::json::object()), DType::kBF16);
  EXPECT_EQ(models::weight_dtype_from_config({{"torch_dtype", "float32"}}), DType::kF32);
  EXPECT_EQ(models::weight_dtype_from_config({{"dtype", "bfloat16"}}), DType::kBF16);
  EXPECT_THROW((void)models::weight_dtype_from_config({{"dtype", "int8"}}), Error);
  EXPECT_EQ(models::format_bytes(1536.0), "1.50 KiB");
}

// ---------------------------------------------------------------------------------------------------------
// The engine: a budget that cannot hold a full-length request starts with a lower max_model_len.

TEST(MemoryPlanEngine, TinyBudgetLowersMaxModelLenOfALongContextConfig) {
  test::TempDir tmp;
  const auto src = test::fixture_model("glm-a");
  for (const auto& e : std::filesystem::directory_iterator(src))
    if (e.is_regular_file()) std::filesystem::create_symlink(e.path(), tmp.path() / e.path().filename());
  nlohmann::json config = read_json(src / "config.json");
  config["max_position_embeddings"] = 202752;  // GLM-4.6 / 4.7's context
  std::filesystem::remove(tmp.path() / "config.json");
  std::ofstream(tmp.path() / "config.json") << config.dump(2);

  auto be = ops::make_cpu_backend(1);
  auto m = models::load_model(tmp.path(), {.with_draft = true, .draft_quant = {}}, *be);
  ASSERT_EQ(m->config.max_position_embeddings, 202752);
  const auto& c = m->config;
  for (DType dt : {DType::kBF16, DType::kF8E4M3, DType::kF32}) {
    SCOPED_TRACE(dtype_name(dt));
    const size_t per_token =
        2 * c.num_key_value_heads * c.head_dim * dtype_size(dt) * (c.num_hidden_layers + 1);
    engine::EngineOptions eo{.max_running_requests = 4,
                             .kv_cache_dtype = dt,
                             .kv_cache_memory = per_token * 256 + 64 * 16,  // 256 tokens (+ fp8 scales)
                             .spec = {.enabled = true, .num_steps = 3}};
    engine::Engine eng(*m, *be, eo);
    EXPECT_EQ(eng.kv_capacity_tokens(), 256);
    EXPECT_EQ(eng.max_model_len(), 256 - 4);  // lowered from 202752: K + 1 slots stay free for drafts
    engine::GenerateRequest req;
    req.prompt = {1, 2, 3, 4, 5, 6, 7, 8};
    req.max_tokens = 16;
    req.sampling.temperature = 0.0f;
    req.ignore_eos = true;
    engine::RequestOutput last;
    eng.submit(req, [&](const engine::RequestOutput& o) {
      if (o.finished()) last = o;
    });
    eng.run_until_idle();
    EXPECT_EQ(last.completion_tokens, 16);
    req.max_tokens = 300;  // beyond the lowered length: a validation error, not a crash
    EXPECT_THROW(eng.submit(req, {}), Error);
  }
  // An explicit --kv-cache-tokens that is too short lowers it the same way.
  engine::Engine small(*m, *be, {.max_running_requests = 1, .kv_cache_tokens = 64, .max_model_len = 1000});
  EXPECT_EQ(small.max_model_len(), 64 - 4);
  // A budget below one block is an error naming the flags to change.
  try {
    engine::Engine none(*m, *be, {.kv_cache_memory = 100});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("--kv-cache-memory"));
  }
}

// fp8 KV scales in vLLM's convention (`self_attn.k_scale` / `v_scale`) are read from the checkpoint: one
// scalar or one per kv head per attention layer, the NextN layer's for the draft; partial sets are errors.
TEST(MemoryPlanEngine, Fp8KvScalesComeFromTheCheckpoint) {
  test::TempDir tmp;
  auto with_scales = [](bool all_layers) {
    return [all_layers](const loader::TensorInfo& t, loader::SafetensorsWriter& w) {
      w.add(t.name, t.view());
      const std::string suffix = "self_attn.k_proj.weight";
      if (!t.name.ends_with(suffix)) return;
      const std::string p = t.name.substr(0, t.name.size() - suffix.size());
      const int layer = std::stoi(p.substr(std::string("model.layers.").size()));
      if (!all_layers && layer == 1) return;
      const float k = 0.5f * static_cast<float>(layer + 1);                     // scalar, shape []
      const std::vector<uint16_t> v = {f32_to_bf16(0.25f), f32_to_bf16(2.0f)};  // [Hkv = 2] bf16
      w.add(p + "self_attn.k_scale", DType::kF32, Shape{}, &k);
      w.add(p + "self_attn.v_scale", DType::kBF16, Shape{2}, v.data());
    };
  };
  test::copy_checkpoint(test::fixture_model("glm-a"), tmp.path(), with_scales(true));
  auto be = ops::make_cpu_backend(1);
  auto m = models::load_model(tmp.path(), {.with_draft = true, .draft_quant = {}}, *be);
  const auto s = models::read_model_kv_scales(*m);
  EXPECT_EQ(s.target.k, (std::vector<float>{0.5f, 0.5f, 1.0f, 1.0f, 1.5f, 1.5f}));
  EXPECT_EQ(s.target.v, (std::vector<float>{0.25f, 2.0f, 0.25f, 2.0f, 0.25f, 2.0f}));
  EXPECT_EQ(s.draft.k, (std::vector<float>{2.0f, 2.0f}));  // the NextN layer model.layers.3.
  engine::Engine eng(*m, *be,
                     {.kv_cache_tokens = 256,
                      .max_model_len = 128,
                      .kv_cache_dtype = DType::kF8E4M3,
                      .spec = {.enabled = true, .num_steps = 2}});
  engine::GenerateRequest req;
  req.prompt = {1, 2, 3, 4, 5};
  req.max_tokens = 8;
  req.sampling.temperature = 0.0f;
  req.ignore_eos = true;
  int64_t n = 0;
  eng.submit(req, [&](const engine::RequestOutput& o) { n += static_cast<int64_t>(o.new_tokens.size()); });
  eng.run_until_idle();
  EXPECT_EQ(n, 8);

  test::TempDir partial;
  test::copy_checkpoint(test::fixture_model("glm-a"), partial.path(), with_scales(false));
  auto mp = models::load_model(partial.path(), {.with_draft = true, .draft_quant = {}}, *be);
  try {
    (void)models::read_model_kv_scales(*mp);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("model.layers.1."));
  }
}

// ---------------------------------------------------------------------------------------------------------
// `tandem inspect --plan` through the binary, on folders that hold only config.json.

std::filesystem::path tandem_binary() {
  return TANDEM_CLI_BINARY;
}

using test::CliResult;
using test::run_tandem;

class InspectPlan : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(tandem_binary()))
        << tandem_binary() << " is missing: build the tandem target of this build folder";
  }
};

TEST_P(InspectPlan, PrintsThePlanFromConfigJsonAlone) {
  const std::string dir = config_dir(GetParam()).string();
  ASSERT_FALSE(std::filesystem::exists(config_dir(GetParam()) / "model.safetensors"));
  const CliResult text = run_tandem("inspect --model " + dir + " --plan");
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_THAT(text.out, HasSubstr("no weights read"));
  for (const char* m : {"24GiB", "80GiB", "141GiB"}) EXPECT_THAT(text.out, HasSubstr(m));
  std::cout << text.out;

  const CliResult js =
      run_tandem("inspect --model " + dir + " --plan --json --kv-cache-dtype fp8 --memory 1TiB 2TiB");
  ASSERT_EQ(js.code, 0) << js.out;
  const auto j = nlohmann::json::parse(js.out);
  const Parsed p = parse(GetParam());
  const auto want = models::plan_memory(p.config, p.quant, {.kv_dtype = DType::kF8E4M3, .with_draft = true});
  EXPECT_EQ(j["kv_cache_dtype"], "fp8_e4m3");
  EXPECT_EQ(j["target"]["kv_bytes_per_token"].get<size_t>(), want.kv_bytes_per_token_target);
  EXPECT_EQ(j["draft"]["kv_bytes_per_token"].get<size_t>(), want.kv_bytes_per_token_draft);
  EXPECT_EQ(j["target"]["weight_bytes"].get<size_t>(), want.target.bytes);
  ASSERT_EQ(j["budgets"].size(), 2u);
  EXPECT_EQ(j["budgets"][0]["bytes"].get<size_t>(), size_t{1} << 40);
  const auto fit = models::fit_total_memory(want, size_t{2} << 40);
  EXPECT_EQ(j["budgets"][1]["with_draft"]["kv_tokens"].get<int64_t>(), fit.kv_tokens);
  EXPECT_EQ(j["budgets"][1]["with_draft"]["max_model_len"].get<int64_t>(), fit.max_model_len);
}

INSTANTIATE_TEST_SUITE_P(Configs, InspectPlan,
                         ::testing::Values("glm-4.5", "glm-4.5-air", "glm-4.6", "glm-4.7", "glm-4.7-fp8"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           std::replace(s.begin(), s.end(), '.', '_');
                           return s;
                         });

TEST(InspectPlanErrors, BadFlagsAndFoldersFailWithTheirNames) {
  if (!std::filesystem::exists(tandem_binary())) GTEST_SKIP() << "no tandem binary";
  const std::string dir = config_dir("glm-4.5").string();
  CliResult r = run_tandem("inspect --model " + dir + " --plan --kv-cache-dtype fp8_e5m2");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("--kv-cache-dtype"));
  r = run_tandem("inspect --model " + dir + " --plan --memory lots");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("--memory"));
  r = run_tandem("inspect --model /nonexistent --plan");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("config.json"));
}

}  // namespace
