#include "models/glm4_moe/config.h"

#include <limits>

#include "models/config_reader.h"

namespace tandem::models::glm4_moe {

namespace {

// Newer transformers write rope settings under `rope_parameters`; older files keep them at the top level.
void read_rope(const ConfigReader& r, Glm4MoeConfig& c) {
  if (r.has("rope_parameters")) {
    const ConfigReader rp(r.raw().at("rope_parameters"), r.where() + " rope_parameters");
    rp.require_one_of("rope_type", {"default"});
    c.rope_theta = rp.get<float>("rope_theta");
    c.partial_rotary_factor = rp.get_or<float>("partial_rotary_factor", r.get_or<float>("partial_rotary_factor", 0.5f));
  } else {
    c.rope_theta = r.get<float>("rope_theta");
    c.partial_rotary_factor = r.get_or<float>("partial_rotary_factor", 0.5f);  // vLLM's default for Glm4Moe
  }
  if (r.has("rope_scaling")) {
    const ConfigReader rs(r.raw().at("rope_scaling"), r.where() + " rope_scaling");
    rs.require_one_of("rope_type", {"default"});
    rs.require_one_of("type", {"default"});
  }
}

// Every value checked against its meaning once, here, so nothing downstream (memory plan, allocation,
// kernels) sees a count that is zero, negative, absurd or inconsistent. The bounds are far beyond any
// published model (GLM-4.7: 92 layers, hidden 5120, 160 experts, vocab 151552) and small enough that no size
// product overflows int64; a million layers would otherwise allocate until the kernel kills the process.
constexpr int kMaxLayers = 10000;
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxWidth = int64_t{1} << 20;  // hidden and intermediate sizes
constexpr int kMaxHeads = 4096;
constexpr int kMaxHeadDim = 4096;
constexpr int kMaxExperts = 1 << 14;
constexpr int64_t kMaxPositions = int64_t{1} << 30;

void check_hf_config(const ConfigReader& r, const Glm4MoeConfig& c) {
  r.check_range<int64_t>("vocab_size", c.vocab_size, 1, kMaxVocab);
  r.check_range<int64_t>("hidden_size", c.hidden_size, 1, kMaxWidth);
  r.check_range<int64_t>("intermediate_size", c.intermediate_size, 1, kMaxWidth);
  r.check_range<int64_t>("moe_intermediate_size", c.moe_intermediate_size, 1, kMaxWidth);
  r.check_range("num_hidden_layers", c.num_hidden_layers, 1, kMaxLayers);
  r.check_range("num_attention_heads", c.num_attention_heads, 1, kMaxHeads);
  r.check_range("num_key_value_heads", c.num_key_value_heads, 1, kMaxHeads);
  if (!r.has("head_dim") && c.hidden_size % c.num_attention_heads != 0)
    fail(
        "config.json: 'hidden_size' {} is not divisible by 'num_attention_heads' {} (and no 'head_dim' is "
        "given)",
        c.hidden_size, c.num_attention_heads);
  r.check_range("head_dim", c.head_dim, 1, kMaxHeadDim);
  r.check_range("n_routed_experts", c.n_routed_experts, 1, kMaxExperts);
  r.check_range("num_experts_per_tok", c.num_experts_per_tok, 1, kMaxExperts);
  if (c.num_experts_per_tok > c.n_routed_experts)
    fail("config.json: 'num_experts_per_tok' {} > 'n_routed_experts' {}", c.num_experts_per_tok,
         c.n_routed_experts);
  r.check_range("n_shared_experts", c.n_shared_experts, 0, kMaxExperts);
  r.check_range("first_k_dense_replace", c.first_k_dense_replace, 0, c.num_hidden_layers);
  r.check_range<int64_t>("max_position_embeddings", c.max_position_embeddings, 1, kMaxPositions);
  r.check_range("rms_norm_eps", c.rms_norm_eps, 0.0f, 1.0f, /*lo_open=*/true, /*hi_open=*/true);
  r.check_range("rope_theta", c.rope_theta, 0.0f, std::numeric_limits<float>::max(), /*lo_open=*/true);
  r.check_range("partial_rotary_factor", c.partial_rotary_factor, 0.0f, 1.0f, /*lo_open=*/true);
  r.check_range("routed_scaling_factor", c.routed_scaling_factor, 0.0f, std::numeric_limits<float>::max(),
                /*lo_open=*/true);
  for (const int32_t id : c.eos_token_ids) {
    if (id < 0 || id >= c.vocab_size)
      fail("config.json: 'eos_token_id' {} is outside the vocabulary [0, {}) of 'vocab_size'", id,
           c.vocab_size);
  }
}

}  // namespace

Glm4MoeConfig Glm4MoeConfig::from_hf(const nlohmann::json& config, std::set<std::string>* keys_read) {
  TANDEM_CHECK(config.is_object(), "config.json must be a JSON object");
  const ConfigReader r(config, "config.json", keys_read);
  bool arch_ok = false;
  std::string archs = "(none)";
  if (r.has("architectures") && config.at("architectures").is_array()) {
    archs = config.at("architectures").dump();
    for (const auto& a : config.at("architectures"))
      if (a.is_string() && a.get<std::string>() == "Glm4MoeForCausalLM") arch_ok = true;
  }
  if (!arch_ok) fail("config.json: unsupported architecture {} (this model family needs Glm4MoeForCausalLM)", archs);
  r.require_one_of("model_type", {"glm4_moe"});
  r.require_one_of("hidden_act", {"silu"});
  r.require_one_of("scoring_func", {"sigmoid"});
  r.require_one_of("topk_method", {"noaux_tc"});
  r.require_one_of("moe_router_dtype", {"float32"});

  Glm4MoeConfig c;
  c.vocab_size = r.get<int64_t>("vocab_size");
  c.hidden_size = r.get<int64_t>("hidden_size");
  c.intermediate_size = r.get<int64_t>("intermediate_size");
  c.moe_intermediate_size = r.get<int64_t>("moe_intermediate_size");
  c.num_hidden_layers = r.get<int>("num_hidden_layers");
  c.num_attention_heads = r.get<int>("num_attention_heads");
  c.num_key_value_heads = r.get<int>("num_key_value_heads");
  c.head_dim = r.get_or<int>("head_dim", static_cast<int>(c.hidden_size / std::max(c.num_attention_heads, 1)));
  c.rms_norm_eps = r.get<float>("rms_norm_eps");
  c.attention_bias = r.get_or<bool>("attention_bias", false);
  c.use_qk_norm = r.get_or<bool>("use_qk_norm", false);
  c.n_routed_experts = r.get<int>("n_routed_experts");
  c.num_experts_per_tok = r.get<int>("num_experts_per_tok");
  c.n_shared_experts = r.get_or<int>("n_shared_experts", 0);
  c.n_group = r.get_or<int>("n_group", 1);
  c.topk_group = r.get_or<int>("topk_group", 1);
  c.norm_topk_prob = r.get_or<bool>("norm_topk_prob", true);
  c.routed_scaling_factor = r.get_or<float>("routed_scaling_factor", 1.0f);
  c.first_k_dense_replace = r.get_or<int>("first_k_dense_replace", 0);
  c.num_nextn_predict_layers = r.get_or<int>("num_nextn_predict_layers", 0);
  c.tie_word_embeddings = r.get_or<bool>("tie_word_embeddings", false);
  c.max_position_embeddings = r.get_or<int64_t>("max_position_embeddings", 131072);
  c.eos_token_ids = r.int_list("eos_token_id");
  read_rope(r, c);

  check_hf_config(r, c);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail("config.json: num_attention_heads {} is not a multiple of num_key_value_heads {}", c.num_attention_heads,
         c.num_key_value_heads);
  if (c.n_group < 1 || c.n_routed_experts % c.n_group != 0 || c.topk_group < 1 || c.topk_group > c.n_group)
    fail("config.json: n_group {} / topk_group {} do not divide n_routed_experts {}", c.n_group, c.topk_group,
         c.n_routed_experts);
  if (c.n_group > 1 && c.n_routed_experts / c.n_group < 2)
    fail("config.json: group-limited routing needs >= 2 experts per group (n_routed_experts {}, n_group {})",
         c.n_routed_experts, c.n_group);
  const int rd = c.rot_dim();
  if (rd <= 0 || rd % 2 != 0 || rd > c.head_dim)
    fail("config.json: partial_rotary_factor {} gives {} rotary dims for head_dim {} (need an even count)",
         c.partial_rotary_factor, rd, c.head_dim);
  if (c.num_nextn_predict_layers < 0 || c.num_nextn_predict_layers > 1)
    fail("config.json: num_nextn_predict_layers = {} (GLM checkpoints carry 0 or 1 NextN layer)",
         c.num_nextn_predict_layers);
  if (c.tie_word_embeddings)
    fail("config.json: tie_word_embeddings = true is not a Glm4Moe layout tandem implements");
  return c;
}

DecoderLayerOptions Glm4MoeConfig::layer_options() const {
  DecoderLayerOptions o;
  o.attn = AttentionOptions{.n_heads = num_attention_heads,
                            .n_kv_heads = num_key_value_heads,
                            .head_dim = head_dim,
                            .rot_dim = rot_dim(),
                            .rope_theta = rope_theta,
                            .rms_norm_eps = rms_norm_eps,
                            .qk_norm = use_qk_norm,
                            .unit_offset_norm = false,
                            .output_gate = false};
  o.routing = ops::MoeRouting{.top_k = num_experts_per_tok,
                              .n_group = n_group,
                              .topk_group = topk_group,
                              .norm_topk_prob = norm_topk_prob,
                              .routed_scaling_factor = routed_scaling_factor,
                              .scoring = ops::MoeScoring::kSigmoid};
  o.rms_norm_eps = rms_norm_eps;
  o.unit_offset_norm = false;
  return o;
}

}  // namespace tandem::models::glm4_moe
