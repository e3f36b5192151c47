#include "models/qwen3_next/mtp.h"

#include "models/layers/weights_util.h"

namespace tandem::models::qwen3_next {

namespace {

DecoderLayerWeights load_layer(loader::WeightMap& wm, const std::string& p, const Qwen3NextConfig& c,
                               loader::LinearLoad load) {
  using loader::Bias;
  const int64_t H = c.hidden_size, D = c.head_dim, Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  const Bias bias = c.attention_bias ? Bias::kRequired : Bias::kNone;
  DecoderLayerWeights w;
  w.input_layernorm = wm.tensor(p + "input_layernorm.weight", {H}, kFloatTypes);
  w.post_attention_layernorm = wm.tensor(p + "post_attention_layernorm.weight", {H}, kFloatTypes);
  w.self_attn.q_proj = wm.linear(p + "self_attn.q_proj", Hq * D * 2, H, bias, load);  // [q | gate] per head
  w.self_attn.k_proj = wm.linear(p + "self_attn.k_proj", Hkv * D, H, bias, load);
  w.self_attn.v_proj = wm.linear(p + "self_attn.v_proj", Hkv * D, H, bias, load);
  w.self_attn.o_proj = wm.linear(p + "self_attn.o_proj", H, Hq * D, Bias::kNone, load);
  w.self_attn.q_norm = wm.tensor(p + "self_attn.q_norm.weight", {D}, kFloatTypes);
  w.self_attn.k_norm = wm.tensor(p + "self_attn.k_norm.weight", {D}, kFloatTypes);
  if (c.num_experts == 0) {
    w.mlp = load_mlp(wm, p + "mlp.", c.intermediate_size, H, load);
    return w;
  }
  w.is_moe = true;
  w.moe.gate = wm.linear(p + "mlp.gate", c.num_experts, H, Bias::kNone, loader::LinearLoad::kAsStored);
  for (int e = 0; e < c.num_experts; ++e)
    w.moe.experts.push_back(load_mlp(wm, p + "mlp.experts." + std::to_string(e) + ".", c.moe_intermediate_size, H, load));
  if (c.shared_expert_intermediate_size > 0) {
    w.moe.has_shared = true;
    w.moe.shared_experts = load_mlp(wm, p + "mlp.shared_expert.", c.shared_expert_intermediate_size, H, load);
    w.moe.shared_expert_gate = wm.linear(p + "mlp.shared_expert_gate", 1, H, Bias::kNone, loader::LinearLoad::kAsStored);
  }
  return w;
}

}  // namespace

mtp::MtpSpec mtp_spec(const Qwen3NextConfig& c) {
  mtp::MtpSpec s;
  s.layout = mtp::MtpLayout{.family = "Qwen3-Next MTP",
                            .prefix = "mtp.",
                            .fc = "fc",
                            .norm_embedding = "pre_fc_norm_embedding",
                            .norm_hidden = "pre_fc_norm_hidden",
                            .final_norm = "norm",
                            .decoder = "layers.0.",
                            .own_embed = "",
                            .own_head = "",
                            .unit_offset_norms = true};
  s.hidden_size = c.hidden_size;
  s.vocab_size = c.vocab_size;
  s.rms_norm_eps = c.rms_norm_eps;
  s.layer_options = c.mtp_layer_options();
  s.load_layer = [c](loader::WeightMap& wm, const std::string& prefix, loader::LinearLoad load) {
    return load_layer(wm, prefix, c, load);
  };
  return s;
}

std::unique_ptr<Qwen3NextMtp> load_mtp(const std::filesystem::path& dir, loader::LinearLoad load) {
  auto m = std::make_unique<Qwen3NextMtp>();
  m->checkpoint = loader::Checkpoint::open(dir);
  m->config = Qwen3NextConfig::from_hf(m->checkpoint->config());
  const auto quant = loader::QuantConfig::from_hf(m->checkpoint->config());
  loader::WeightMap wm(*m->checkpoint, quant);
  const int64_t V = m->config.vocab_size, H = m->config.hidden_size;
  const Tensor embed = wm.tensor("model.embed_tokens.weight", {V, H}, kFloatTypes);
  ops::LinearWeight head;
  if (m->config.tie_word_embeddings) head.weight = embed;
  else head = wm.linear("lm_head", V, H, loader::Bias::kNone, loader::LinearLoad::kAsStored);
  m->draft = std::make_unique<mtp::MtpDraft>(mtp_spec(m->config), wm, embed, head, load);
  // The Qwen3-Next target layers are not built here: report only what the MTP loader left unconsumed.
  const std::vector<std::string> target_prefixes = {"model.layers.", "model.norm."};
  m->unused = wm.finish(target_prefixes);
  m->owned = wm.take_owned();
  return m;
}

}  // namespace tandem::models::qwen3_next
