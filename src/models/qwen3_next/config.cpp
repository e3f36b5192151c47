#include "models/qwen3_next/config.h"

#include <limits>

#include "models/config_reader.h"

namespace tandem::models::qwen3_next {

Qwen3NextConfig Qwen3NextConfig::from_hf(const nlohmann::json& config) {
  const ConfigReader r(config, "config.json");
  r.require_one_of("model_type", {"qwen3_next", "qwen3_5_text", "qwen3_5_moe_text"});
  r.require_one_of("hidden_act", {"silu"});
  Qwen3NextConfig c;
  c.vocab_size = r.get<int64_t>("vocab_size");
  c.hidden_size = r.get<int64_t>("hidden_size");
  c.num_attention_heads = r.get<int>("num_attention_heads");
  c.num_key_value_heads = r.get<int>("num_key_value_heads");
  c.head_dim = r.get_or<int>("head_dim", static_cast<int>(c.hidden_size / std::max(1, c.num_attention_heads)));
  if (r.has("rope_parameters")) {
    const ConfigReader rp(config.at("rope_parameters"), "config.json rope_parameters");
    rp.require_one_of("rope_type", {"default"});
    c.rope_theta = rp.get<float>("rope_theta");
    c.partial_rotary_factor = rp.get_or<float>("partial_rotary_factor", r.get_or<float>("partial_rotary_factor", 0.25f));
  } else {
    c.rope_theta = r.get<float>("rope_theta");
    c.partial_rotary_factor = r.get_or<float>("partial_rotary_factor", 0.25f);
  }
  c.rms_norm_eps = r.get<float>("rms_norm_eps");
  c.attention_bias = r.get_or<bool>("attention_bias", false);
  c.num_experts = r.get_or<int>("num_experts", 0);
  c.num_experts_per_tok = r.get_or<int>("num_experts_per_tok", 0);
  c.moe_intermediate_size = r.get_or<int64_t>("moe_intermediate_size", 0);
  c.shared_expert_intermediate_size = r.get_or<int64_t>("shared_expert_intermediate_size", 0);
  c.intermediate_size = r.get_or<int64_t>("intermediate_size", 0);
  c.norm_topk_prob = r.get_or<bool>("norm_topk_prob", true);
  c.num_mtp_layers = r.get_or<int>("num_nextn_predict_layers", r.get_or<int>("mtp_num_hidden_layers", 1));
  c.tie_word_embeddings = r.get_or<bool>("tie_word_embeddings", false);
  if (c.num_mtp_layers != 1) fail("config.json: {} MTP layers; tandem loads exactly 1", c.num_mtp_layers);
  // The same meaning checks as Glm4MoeConfig::from_hf (see there for the bounds), for the fields the MTP
  // reads.
  r.check_range<int64_t>("vocab_size", c.vocab_size, 1, int64_t{1} << 24);
  r.check_range<int64_t>("hidden_size", c.hidden_size, 1, int64_t{1} << 20);
  r.check_range("num_attention_heads", c.num_attention_heads, 1, 4096);
  r.check_range("num_key_value_heads", c.num_key_value_heads, 1, 4096);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail("config.json: 'num_attention_heads' {} is not a multiple of 'num_key_value_heads' {}",
         c.num_attention_heads, c.num_key_value_heads);
  if (!r.has("head_dim") && c.hidden_size % c.num_attention_heads != 0)
    fail(
        "config.json: 'hidden_size' {} is not divisible by 'num_attention_heads' {} (and no 'head_dim' is "
        "given)",
        c.hidden_size, c.num_attention_heads);
  r.check_range("head_dim", c.head_dim, 1, 4096);
  r.check_range("rms_norm_eps", c.rms_norm_eps, 0.0f, 1.0f, /*lo_open=*/true, /*hi_open=*/true);
  r.check_range("rope_theta", c.rope_theta, 0.0f, std::numeric_limits<float>::max(), /*lo_open=*/true);
  r.check_range("partial_rotary_factor", c.partial_rotary_factor, 0.0f, 1.0f, /*lo_open=*/true);
  r.check_range("num_experts", c.num_experts, 0, 1 << 14);
  r.check_range<int64_t>("moe_intermediate_size", c.moe_intermediate_size, 0, int64_t{1} << 20);
  r.check_range<int64_t>("shared_expert_intermediate_size", c.shared_expert_intermediate_size, 0,
                         int64_t{1} << 20);
  r.check_range<int64_t>("intermediate_size", c.intermediate_size, 0, int64_t{1} << 20);
  if (c.num_experts > 0 && (c.num_experts_per_tok <= 0 || c.num_experts_per_tok > c.num_experts))
    fail("config.json: 'num_experts_per_tok' {} for {} experts ('num_experts')", c.num_experts_per_tok,
         c.num_experts);
  if (c.rot_dim() <= 0 || c.rot_dim() % 2 || c.rot_dim() > c.head_dim)
    fail("config.json: partial_rotary_factor {} gives {} rotary dims of {}", c.partial_rotary_factor, c.rot_dim(),
         c.head_dim);
  return c;
}

DecoderLayerOptions Qwen3NextConfig::mtp_layer_options() const {
  DecoderLayerOptions o;
  o.attn = AttentionOptions{.n_heads = num_attention_heads,
                            .n_kv_heads = num_key_value_heads,
                            .head_dim = head_dim,
                            .rot_dim = rot_dim(),
                            .rope_theta = rope_theta,
                            .rms_norm_eps = rms_norm_eps,
                            .qk_norm = true,
                            .unit_offset_norm = true,
                            .output_gate = true};
  o.routing = ops::MoeRouting{.top_k = num_experts_per_tok,
                              .n_group = 1,
                              .topk_group = 1,
                              .norm_topk_prob = norm_topk_prob,
                              .routed_scaling_factor = 1.0f,
                              .scoring = ops::MoeScoring::kSoftmax};
  o.rms_norm_eps = rms_norm_eps;
  o.unit_offset_norm = true;
  return o;
}

}  // namespace tandem::models::qwen3_next
