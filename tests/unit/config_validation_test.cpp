// config.json values checked against their meaning where config.json is parsed (Glm4MoeConfig::from_hf,
// Qwen3NextConfig::from_hf): each absurd value is an error naming config.json and the field, never a silent
// load (a negative epsilon, a count of 2^32 + 4 read as 4, a million layers allocated until the kernel kills
// the process, eos ids outside the vocabulary). Issue 18, "Checkpoints".
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "models/config_overrides.h"
#include "models/glm4_moe/config.h"
#include "models/qwen3_next/config.h"

namespace tandem::models {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

json glm47() {
  return read_json(std::filesystem::path(TANDEM_SOURCE_DIR) / "tests/fixtures/configs/glm-4.7/config.json");
}
json tiny() {
  return read_json(std::filesystem::path(TANDEM_SOURCE_DIR) / "models/tandem-tiny/config.json");
}
json qwen3next() {
  return read_json(std::filesystem::path(TANDEM_SOURCE_DIR) /
                   "tests/fixtures/models/qwen3next-mtp/config.json");
}

// The error of `fn`, or "" (and a test failure) when it succeeds.
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

struct Case {
  const char* label;
  json patch;         // merged over the base config (RFC 7386: null removes a key)
  const char* field;  // must appear quoted in the message
};

constexpr int64_t k2to32plus4 = (int64_t{1} << 32) + 4;

std::vector<Case> glm_cases() {
  return {
      {"negative rms_norm_eps", {{"rms_norm_eps", -1e-5}}, "rms_norm_eps"},
      {"zero rms_norm_eps", {{"rms_norm_eps", 0}}, "rms_norm_eps"},
      {"rms_norm_eps beyond a float", {{"rms_norm_eps", 1e300}}, "rms_norm_eps"},
      {"zero rope_theta", {{"rope_theta", 0}}, "rope_theta"},
      {"negative rope_theta", {{"rope_theta", -10000}}, "rope_theta"},
      {"rope_theta beyond a float", {{"rope_theta", 1e39}}, "rope_theta"},
      {"zero layers", {{"num_hidden_layers", 0}}, "num_hidden_layers"},
      {"negative layers", {{"num_hidden_layers", -3}}, "num_hidden_layers"},
      {"a million layers", {{"num_hidden_layers", 1000000}}, "num_hidden_layers"},
      {"layers 2^32+4 (narrowing would read 4)", {{"num_hidden_layers", k2to32plus4}}, "num_hidden_layers"},
      {"layers 2^64-1", {{"num_hidden_layers", UINT64_MAX}}, "num_hidden_layers"},
      {"zero heads", {{"num_attention_heads", 0}}, "num_attention_heads"},
      {"heads 2^32+4", {{"num_attention_heads", k2to32plus4}}, "num_attention_heads"},
      {"negative kv heads", {{"num_key_value_heads", -8}}, "num_key_value_heads"},
      {"zero hidden", {{"hidden_size", 0}}, "hidden_size"},
      {"negative hidden", {{"hidden_size", -5120}}, "hidden_size"},
      {"absurd hidden", {{"hidden_size", int64_t{1} << 40}}, "hidden_size"},
      {"hidden not divisible by heads (no head_dim)",
       {{"hidden_size", 5121}, {"head_dim", nullptr}},
       "hidden_size"},
      {"zero vocab", {{"vocab_size", 0}}, "vocab_size"},
      {"negative vocab", {{"vocab_size", -1}}, "vocab_size"},
      {"absurd vocab", {{"vocab_size", int64_t{1} << 40}}, "vocab_size"},
      {"zero head_dim", {{"head_dim", 0}}, "head_dim"},
      {"negative head_dim", {{"head_dim", -128}}, "head_dim"},
      {"head_dim 2^32+4", {{"head_dim", k2to32plus4}}, "head_dim"},
      {"zero intermediate", {{"intermediate_size", 0}}, "intermediate_size"},
      {"negative moe intermediate", {{"moe_intermediate_size", -1}}, "moe_intermediate_size"},
      {"zero experts", {{"n_routed_experts", 0}}, "n_routed_experts"},
      {"experts 2^32+4", {{"n_routed_experts", k2to32plus4}}, "n_routed_experts"},
      {"zero experts per token", {{"num_experts_per_tok", 0}}, "num_experts_per_tok"},
      {"more experts per token than experts", {{"num_experts_per_tok", 161}}, "num_experts_per_tok"},
      {"negative shared experts", {{"n_shared_experts", -1}}, "n_shared_experts"},
      {"dense layers beyond the layer count", {{"first_k_dense_replace", 93}}, "first_k_dense_replace"},
      {"negative dense layers", {{"first_k_dense_replace", -1}}, "first_k_dense_replace"},
      {"zero positions", {{"max_position_embeddings", 0}}, "max_position_embeddings"},
      {"rotary factor 0", {{"partial_rotary_factor", 0}}, "partial_rotary_factor"},
      {"rotary factor 2", {{"partial_rotary_factor", 2.0}}, "partial_rotary_factor"},
      {"rotary factor 1e30", {{"partial_rotary_factor", 1e30}}, "partial_rotary_factor"},
      {"zero routed scaling", {{"routed_scaling_factor", 0}}, "routed_scaling_factor"},
      {"eos id == vocab", {{"eos_token_id", {151329, 151552}}}, "eos_token_id"},
      {"negative eos id", {{"eos_token_id", -1}}, "eos_token_id"},
      {"eos id 2^32+4", {{"eos_token_id", {k2to32plus4}}}, "eos_token_id"},
  };
}

TEST(ConfigValidation, Glm4MoeRefusesEachAbsurdValueNamingConfigJsonAndTheField) {
  ASSERT_NO_THROW(glm4_moe::Glm4MoeConfig::from_hf(glm47()));
  for (const Case& c : glm_cases()) {
    json j = glm47();
    j.merge_patch(c.patch);
    const std::string msg = error_of([&] { glm4_moe::Glm4MoeConfig::from_hf(j); });
    EXPECT_THAT(msg, HasSubstr("config.json")) << c.label;
    EXPECT_THAT(msg, HasSubstr(std::string("'") + c.field + "'")) << c.label << ": " << msg;
  }
}

// The bundled model keeps rope settings under rope_parameters (newer transformers): checked there too.
TEST(ConfigValidation, RopeParametersAreCheckedLikeTopLevelKeys) {
  ASSERT_NO_THROW(glm4_moe::Glm4MoeConfig::from_hf(tiny()));
  for (const double theta : {0.0, -1.0, 1e39}) {
    json j = tiny();
    j["rope_parameters"]["rope_theta"] = theta;
    const std::string msg = error_of([&] { glm4_moe::Glm4MoeConfig::from_hf(j); });
    EXPECT_THAT(msg, HasSubstr("config.json")) << theta;
    EXPECT_THAT(msg, HasSubstr("'rope_theta'")) << theta;
  }
  json j = tiny();
  j["eos_token_id"] = {4096, 4160};  // vocab_size is 4160
  EXPECT_THAT(error_of([&] { glm4_moe::Glm4MoeConfig::from_hf(j); }), HasSubstr("'eos_token_id' 4160"));
}

TEST(ConfigValidation, Qwen3NextRefusesAbsurdValues) {
  ASSERT_NO_THROW(qwen3_next::Qwen3NextConfig::from_hf(qwen3next()));
  const std::vector<Case> cases = {
      {"zero rms_norm_eps", {{"rms_norm_eps", 0}}, "rms_norm_eps"},
      {"zero heads", {{"num_attention_heads", 0}}, "num_attention_heads"},
      {"heads 2^32+4", {{"num_attention_heads", k2to32plus4}}, "num_attention_heads"},
      {"negative hidden", {{"hidden_size", -1}}, "hidden_size"},
      {"zero vocab", {{"vocab_size", 0}}, "vocab_size"},
      {"negative head_dim", {{"head_dim", -1}}, "head_dim"},
      {"negative experts", {{"num_experts", -4}}, "num_experts"},
      {"rotary factor 1e30", {{"partial_rotary_factor", 1e30}}, "partial_rotary_factor"},
  };
  for (const Case& c : cases) {
    json j = qwen3next();
    j.merge_patch(c.patch);
    if (c.patch.contains("partial_rotary_factor") && j.contains("rope_parameters"))
      j["rope_parameters"]["partial_rotary_factor"] = c.patch["partial_rotary_factor"];
    const std::string msg = error_of([&] { qwen3_next::Qwen3NextConfig::from_hf(j); });
    EXPECT_THAT(msg, HasSubstr("config.json")) << c.label;
    EXPECT_THAT(msg, HasSubstr(std::string("'") + c.field + "'")) << c.label << ": " << msg;
  }
}

TEST(ConfigValidation, DeepOverrideArgumentsAreRefused) {
  const std::string deep = R"({"x": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  const std::string msg = error_of([&] { (void)parse_config_overrides(deep); });
  EXPECT_THAT(msg, HasSubstr("--json-model-override-args"));
  EXPECT_THAT(msg, HasSubstr("nested deeper than 512 levels"));
  EXPECT_EQ(parse_config_overrides(R"({"num_hidden_layers": 8})").at("num_hidden_layers"), 8);
}

}  // namespace
}  // namespace tandem::models
