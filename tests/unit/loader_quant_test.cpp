// QuantConfig::from_hf over the compressed-tensors and DeepSeek fp8 spellings, every rejected variant,
// ignore-list matching and the to_hf round trip.
#include "loader/quant_config.h"
#include "loader_test_util.h"

namespace tandem::loader {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using testing::error_of;
using ::testing::HasSubstr;

// GLM-4.x-FP8 / llm-compressor FP8_DYNAMIC: per-channel weights, dynamic per-token activations.
json glm_fp8() {
  return json::parse(R"({
    "quant_method": "compressed-tensors", "format": "float-quantized", "quantization_status": "compressed",
    "kv_cache_scheme": null, "sparsity_config": {}, "transform_config": null,
    "config_groups": {"group_0": {
      "targets": ["Linear"],
      "weights": {"num_bits": 8, "type": "float", "strategy": "channel", "symmetric": true, "dynamic": false,
                  "group_size": null, "block_structure": null, "actorder": null, "observer": "minmax"},
      "input_activations": {"num_bits": 8, "type": "float", "strategy": "token", "symmetric": true,
                            "dynamic": true, "group_size": null},
      "output_activations": null}},
    "ignore": ["lm_head", "re:.*mlp\\.gate$"]})");
}

json with(json q) {
  return {{"hidden_size", 8}, {"quantization_config", std::move(q)}};
}

json deepseek_fp8() {
  return json::parse(
      R"({"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": [128, 128]})");
}

TEST(QuantConfigTest, NoQuantizationConfig) {
  const QuantConfig q = QuantConfig::from_hf({{"hidden_size", 8}});
  EXPECT_EQ(q.method, QuantMethod::kNone);
  EXPECT_TRUE(q.raw.is_null());
  EXPECT_TRUE(q.to_hf().is_null());
  EXPECT_EQ(QuantConfig::from_hf({{"quantization_config", nullptr}}).method, QuantMethod::kNone);
  EXPECT_FALSE(q.is_ignored("lm_head"));
}

TEST(QuantConfigTest, CompressedTensorsChannelToken) {
  const QuantConfig q = QuantConfig::from_hf(with(glm_fp8()));
  EXPECT_EQ(q.method, QuantMethod::kCompressedTensors);
  EXPECT_EQ(q.weight_strategy, WeightStrategy::kChannel);
  EXPECT_EQ(q.activation_scheme, "dynamic per-token");
  EXPECT_THAT(q.ignore, ElementsAre("lm_head", "re:.*mlp\\.gate$"));
  EXPECT_EQ(q.raw, glm_fp8());
}

TEST(QuantConfigTest, CompressedTensorsBlockGroupAndPerGroupFormat) {
  json q = glm_fp8();
  q.erase("format");  // newer exports spell the format per group
  auto& g = q["config_groups"]["group_0"];
  g["format"] = "float-quantized";
  g["weights"]["strategy"] = "block";
  g["weights"]["block_structure"] = {128, 64};
  g["input_activations"]["strategy"] = "group";
  g["input_activations"]["group_size"] = 128;
  q["config_groups"]["group_1"] = g;  // a second group with the same scheme is fine
  q["config_groups"]["group_1"]["targets"] = {"re:.*self_attn\\..*_proj$"};
  const QuantConfig c = QuantConfig::from_hf(with(q));
  EXPECT_EQ(c.weight_strategy, WeightStrategy::kBlock);
  EXPECT_EQ(c.block_out, 128);
  EXPECT_EQ(c.block_in, 64);
  EXPECT_EQ(c.activation_scheme, "dynamic per-group 128");
}

TEST(QuantConfigTest, CompressedTensorsTensorStrategyWeightOnly) {
  json q = glm_fp8();
  q["config_groups"]["group_0"]["weights"]["strategy"] = "tensor";
  q["config_groups"]["group_0"]["input_activations"] = nullptr;
  const QuantConfig c = QuantConfig::from_hf(with(q));
  EXPECT_EQ(c.weight_strategy, WeightStrategy::kTensor);
  EXPECT_EQ(c.activation_scheme, "none");
}

TEST(QuantConfigTest, DeepSeekFp8) {
  json q = deepseek_fp8();
  q["modules_to_not_convert"] = {"lm_head"};
  q["ignored_layers"] = {"re:model\\.layers\\.0\\..*"};
  const QuantConfig c = QuantConfig::from_hf(with(q));
  EXPECT_EQ(c.method, QuantMethod::kFp8);
  EXPECT_EQ(c.weight_strategy, WeightStrategy::kBlock);
  EXPECT_EQ(c.block_out, 128);
  EXPECT_EQ(c.block_in, 128);
  EXPECT_EQ(c.activation_scheme, "dynamic per-group 128");
  EXPECT_THAT(c.ignore, ElementsAre("re:model\\.layers\\.0\\..*", "lm_head"));
  EXPECT_TRUE(c.is_ignored("model.layers.0.mlp.down_proj"));
  EXPECT_FALSE(c.is_ignored("model.layers.10.mlp.down_proj"));
  // transformers matches modules_to_not_convert entries as substrings.
  EXPECT_TRUE(c.is_ignored("model.lm_head"));
  EXPECT_TRUE(QuantConfig::from_hf(with(deepseek_fp8())).ignore.empty());
}

TEST(QuantConfigTest, IgnoreMatching) {
  QuantConfig c = QuantConfig::from_hf(with(glm_fp8()));
  EXPECT_TRUE(c.is_ignored("lm_head"));
  EXPECT_FALSE(c.is_ignored("model.lm_head"));  // compressed-tensors plain entries are exact
  EXPECT_FALSE(c.is_ignored("lm_head_2"));
  EXPECT_TRUE(c.is_ignored("model.layers.3.mlp.gate"));
  EXPECT_FALSE(c.is_ignored("model.layers.3.mlp.gate_proj"));
  EXPECT_FALSE(c.is_ignored("model.layers.3.mlp.gate.x"));
  EXPECT_FALSE(c.is_ignored("model.layers.3.mlp.down_proj"));
  // "re:" is Python re.match: anchored at the start, not at the end.
  json q = glm_fp8();
  q["ignore"] = {"re:mlp", "re:model\\.layers\\.[0-2]\\."};
  c = QuantConfig::from_hf(with(q));
  EXPECT_FALSE(c.is_ignored("model.layers.5.mlp.down_proj"));  // "re:mlp" does not search
  EXPECT_TRUE(c.is_ignored("mlp.down_proj"));
  EXPECT_TRUE(c.is_ignored("model.layers.0.mlp.down_proj"));
  EXPECT_TRUE(c.is_ignored("model.layers.2.self_attn.q_proj"));
  EXPECT_FALSE(c.is_ignored("model.layers.3.self_attn.q_proj"));
  // Editing `ignore` after parsing is honoured.
  c.ignore = {"re:.*q_proj$", "lm_head"};
  EXPECT_TRUE(c.is_ignored("model.layers.3.self_attn.q_proj"));
  EXPECT_TRUE(c.is_ignored("lm_head"));
  EXPECT_FALSE(c.is_ignored("model.layers.2.self_attn.k_proj"));
}

void expect_same(const QuantConfig& a, const QuantConfig& b) {
  EXPECT_EQ(a.method, b.method);
  EXPECT_EQ(a.weight_strategy, b.weight_strategy);
  EXPECT_EQ(a.block_out, b.block_out);
  EXPECT_EQ(a.block_in, b.block_in);
  EXPECT_EQ(a.activation_scheme, b.activation_scheme);
  EXPECT_EQ(a.ignore, b.ignore);
}

TEST(QuantConfigTest, ToHfRoundTrip) {
  std::vector<json> configs = {glm_fp8(), deepseek_fp8()};
  json block = glm_fp8();
  block["config_groups"]["group_0"]["weights"]["strategy"] = "block";
  block["config_groups"]["group_0"]["weights"]["block_structure"] = {128, 128};
  block["config_groups"]["group_0"]["input_activations"]["strategy"] = "group";
  block["config_groups"]["group_0"]["input_activations"]["group_size"] = 128;
  configs.push_back(block);
  json tensor = glm_fp8();
  tensor["config_groups"]["group_0"]["weights"]["strategy"] = "tensor";
  tensor["config_groups"]["group_0"]["input_activations"]["strategy"] = "tensor";
  configs.push_back(tensor);
  json weight_only = glm_fp8();
  weight_only["config_groups"]["group_0"]["input_activations"] = nullptr;
  configs.push_back(weight_only);
  json ds = deepseek_fp8();
  ds["weight_block_size"] = {64, 32};
  ds["modules_to_not_convert"] = {"lm_head", "re:.*gate$"};
  configs.push_back(ds);
  for (const json& raw : configs) {
    const QuantConfig a = QuantConfig::from_hf(with(raw));
    const json hf = a.to_hf();
    const QuantConfig b = QuantConfig::from_hf(with(hf));
    SCOPED_TRACE(raw.dump());
    expect_same(a, b);
    EXPECT_EQ(b.to_hf(), hf);
    EXPECT_EQ(b.raw, hf);
  }
}

struct Bad {
  std::string label;
  json config;  // the quantization_config
  std::vector<std::string> expect;
};

std::vector<Bad> bad_cases() {
  std::vector<Bad> out;
  auto ct = [&](const std::string& label, const std::function<void(json&)>& edit,
                std::vector<std::string> expect) {
    json q = glm_fp8();
    edit(q);
    out.push_back({label, q, std::move(expect)});
  };
  auto ds = [&](const std::string& label, const std::function<void(json&)>& edit,
                std::vector<std::string> expect) {
    json q = deepseek_fp8();
    edit(q);
    out.push_back({label, q, std::move(expect)});
  };
  for (const char* m : {"awq", "gptq", "bitsandbytes", "modelopt", "mxfp4"})
    out.push_back({m, {{"quant_method", m}}, {"quant_method", std::string("'") + m + "'"}});
  out.push_back({"not an object", json::array({1}), {"quantization_config must be an object"}});
  out.push_back({"no method", json::object(), {"quant_method is missing"}});
  for (const char* f : {"pack-quantized", "int-quantized", "nvfp4-pack-quantized", "naive-quantized"})
    ct(f, [&](json& q) { q["format"] = f; }, {"quantization_config.format", f});
  ct("group format", [](json& q) { q["config_groups"]["group_0"]["format"] = "pack-quantized"; },
     {"config_groups.group_0.format", "pack-quantized"});
  ct("no format", [](json& q) { q.erase("format"); }, {"format is missing"});
  ct("4-bit weights", [](json& q) { q["config_groups"]["group_0"]["weights"]["num_bits"] = 4; },
     {"group_0.weights.num_bits", "4"});
  ct("int weights", [](json& q) { q["config_groups"]["group_0"]["weights"]["type"] = "int"; },
     {"group_0.weights.type", "'int'"});
  ct("asymmetric weights", [](json& q) { q["config_groups"]["group_0"]["weights"]["symmetric"] = false; },
     {"group_0.weights.symmetric", "asymmetric"});
  ct("dynamic weights", [](json& q) { q["config_groups"]["group_0"]["weights"]["dynamic"] = true; },
     {"group_0.weights.dynamic"});
  ct("group weights", [](json& q) { q["config_groups"]["group_0"]["weights"]["strategy"] = "group"; },
     {"group_0.weights.strategy", "'group'"});
  ct("block without structure",
     [](json& q) { q["config_groups"]["group_0"]["weights"]["strategy"] = "block"; },
     {"block_structure is missing"});
  ct("bad block structure",
     [](json& q) {
       q["config_groups"]["group_0"]["weights"]["strategy"] = "block";
       q["config_groups"]["group_0"]["weights"]["block_structure"] = {128, 0};
     },
     {"block_structure", "positive integer"});
  ct("no weights", [](json& q) { q["config_groups"]["group_0"]["weights"] = nullptr; },
     {"group_0.weights is missing"});
  ct("static activations",
     [](json& q) { q["config_groups"]["group_0"]["input_activations"]["dynamic"] = false; },
     {"static activation scales are not supported"});
  ct("asymmetric activations",
     [](json& q) { q["config_groups"]["group_0"]["input_activations"]["symmetric"] = false; },
     {"input_activations.symmetric", "asymmetric"});
  ct("int activations", [](json& q) { q["config_groups"]["group_0"]["input_activations"]["type"] = "int"; },
     {"input_activations.type", "'int'"});
  ct("4-bit activations", [](json& q) { q["config_groups"]["group_0"]["input_activations"]["num_bits"] = 4; },
     {"input_activations.num_bits"});
  ct("local dynamic",
     [](json& q) { q["config_groups"]["group_0"]["input_activations"]["dynamic"] = "local"; },
     {"input_activations.dynamic"});
  ct("group activations without size",
     [](json& q) { q["config_groups"]["group_0"]["input_activations"]["strategy"] = "group"; },
     {"group_size is missing"});
  ct("unknown activation strategy",
     [](json& q) { q["config_groups"]["group_0"]["input_activations"]["strategy"] = "tensor_group"; },
     {"input_activations.strategy", "'tensor_group'"});
  ct("output activations",
     [](json& q) {
       q["config_groups"]["group_0"]["output_activations"] = {{"num_bits", 8}};
     },
     {"output_activations"});
  ct("kv cache scheme", [](json& q) { q["kv_cache_scheme"] = {{"num_bits", 8}}; }, {"kv_cache_scheme"});
  ct("sparsity",
     [](json& q) {
       q["sparsity_config"] = {{"format", "sparse-24-bitmask"}};
     },
     {"sparsity_config"});
  ct("transform",
     [](json& q) {
       q["transform_config"] = {{"config_groups", {{"u", 1}}}};
     },
     {"transform_config"});
  ct("no groups", [](json& q) { q["config_groups"] = json::object(); },
     {"config_groups must be a non-empty object"});
  ct("embedding target",
     [](json& q) {
       q["config_groups"]["group_0"]["targets"] = {"Linear", "Embedding"};
     },
     {"targets contains 'Embedding'"});
  ct("groups disagree",
     [](json& q) {
       q["config_groups"]["group_1"] = q["config_groups"]["group_0"];
       q["config_groups"]["group_1"]["weights"]["strategy"] = "tensor";
     },
     {"disagree", "group_0", "group_1", "weights channel", "weights tensor"});
  ct("bad ignore regex", [](json& q) { q["ignore"] = {"re:(unclosed"}; },
     {"'re:(unclosed'", "regular expression"});
  ct("ignore not strings", [](json& q) { q["ignore"] = {1}; }, {"ignore must hold strings"});
  ds("e5m2", [](json& q) { q["fmt"] = "e5m2"; }, {"fmt", "e5m2"});
  ds("static fp8", [](json& q) { q["activation_scheme"] = "static"; },
     {"static activation scales are not supported"});
  ds("no block size", [](json& q) { q.erase("weight_block_size"); }, {"weight_block_size is missing"});
  ds("block size arity", [](json& q) { q["weight_block_size"] = {128}; }, {"weight_block_size must be"});
  ds("no activation scheme", [](json& q) { q.erase("activation_scheme"); }, {"activation_scheme is missing"});
  return out;
}

TEST(QuantConfigTest, EveryUnsupportedVariantIsANamedError) {
  for (const Bad& b : bad_cases()) {
    const std::string msg = error_of([&] { QuantConfig::from_hf(with(b.config)); });
    for (const auto& s : b.expect) EXPECT_THAT(msg, HasSubstr(s)) << b.label;
  }
}

}  // namespace
}  // namespace tandem::loader
