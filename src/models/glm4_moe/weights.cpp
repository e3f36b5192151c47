#include "models/glm4_moe/weights.h"

#include "models/layers/weights_util.h"

namespace tandem::models::glm4_moe {

using loader::Bias;

DecoderLayerWeights load_decoder_layer(loader::WeightMap& wm, const std::string& p, const Glm4MoeConfig& c,
                                       bool moe, loader::LinearLoad load) {
  const int64_t H = c.hidden_size, D = c.head_dim;
  const int64_t Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  const Bias qkv_bias = c.attention_bias ? Bias::kRequired : Bias::kNone;
  DecoderLayerWeights w;
  w.input_layernorm = wm.tensor(p + "input_layernorm.weight", {H}, kFloatTypes);
  w.post_attention_layernorm = wm.tensor(p + "post_attention_layernorm.weight", {H}, kFloatTypes);
  w.self_attn.q_proj = wm.linear(p + "self_attn.q_proj", Hq * D, H, qkv_bias, load);
  w.self_attn.k_proj = wm.linear(p + "self_attn.k_proj", Hkv * D, H, qkv_bias, load);
  w.self_attn.v_proj = wm.linear(p + "self_attn.v_proj", Hkv * D, H, qkv_bias, load);
  w.self_attn.o_proj = wm.linear(p + "self_attn.o_proj", H, Hq * D, Bias::kNone, load);
  if (c.use_qk_norm) {
    w.self_attn.q_norm = wm.tensor(p + "self_attn.q_norm.weight", {D}, kFloatTypes);
    w.self_attn.k_norm = wm.tensor(p + "self_attn.k_norm.weight", {D}, kFloatTypes);
  }
  w.is_moe = moe;
  if (!moe) {
    w.mlp = load_mlp(wm, p + "mlp.", c.intermediate_size, H, load);
    return w;
  }
  const int64_t E = c.n_routed_experts, Im = c.moe_intermediate_size;
  // The router is not an nn.Linear in HF (never quantized) and runs in fp32.
  w.moe.gate = wm.linear(p + "mlp.gate", E, H, Bias::kNone, loader::LinearLoad::kAsStored);
  w.moe.e_score_correction_bias = wm.f32_tensor(p + "mlp.gate.e_score_correction_bias", {E});
  w.moe.experts.reserve(E);
  for (int64_t e = 0; e < E; ++e)
    w.moe.experts.push_back(load_mlp(wm, p + "mlp.experts." + std::to_string(e) + ".", Im, H, load));
  if (c.n_shared_experts > 0) {
    w.moe.has_shared = true;
    w.moe.shared_experts = load_mlp(wm, p + "mlp.shared_experts.", Im * c.n_shared_experts, H, load);
  }
  return w;
}

}  // namespace tandem::models::glm4_moe
