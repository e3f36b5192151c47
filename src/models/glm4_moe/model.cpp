#include "models/glm4_moe/model.h"

#include "models/glm4_moe/weights.h"
#include "models/layers/row_split.h"
#include "models/layers/weights_util.h"

namespace tandem::models::glm4_moe {

Glm4MoeForCausalLM::Glm4MoeForCausalLM(const Glm4MoeConfig& config, loader::WeightMap& wm)
    : config_(config), layer_options_(config.layer_options()) {
  const int64_t V = config_.vocab_size, H = config_.hidden_size;
  embed_tokens_ = wm.tensor("model.embed_tokens.weight", {V, H}, kFloatTypes);
  layers_.reserve(config_.num_hidden_layers);
  for (int l = 0; l < config_.num_hidden_layers; ++l)
    layers_.push_back(load_decoder_layer(wm, "model.layers." + std::to_string(l) + ".", config_,
                                         config_.is_moe_layer(l), loader::LinearLoad::kAsStored));
  norm_ = wm.tensor("model.norm.weight", {H}, kFloatTypes);
  lm_head_ = wm.linear("lm_head", V, H, loader::Bias::kNone, loader::LinearLoad::kAsStored);
}

ForwardOutput Glm4MoeForCausalLM::forward(ops::Backend& be, Arena& arena, const kv::KvCache& cache,
                                          const ForwardInput& in) const {
  const ops::StepState step = be.begin_step(batch_desc(in, cache.shape().block_size), arena);
  return forward(be, arena, cache, step, in.capture_hidden);
}

ForwardOutput Glm4MoeForCausalLM::forward(ops::Backend& be, Arena& arena, const kv::KvCache& cache,
                                          const ops::StepState& step, bool capture_hidden) const {
  const int64_t T = step.n_tokens, H = config_.hidden_size, V = config_.vocab_size, R = step.n_logit_rows;
  TANDEM_CHECK(T > 0, "forward: empty batch");
  TANDEM_CHECK(cache.shape().n_layers >= n_kv_layers(), "forward: KV cache has {} layers, the model needs {}",
               cache.shape().n_layers, n_kv_layers());
  const StepContext ctx{be, arena, step};

  const Tensor hidden = arena.alloc(DType::kF32, {T, H});  // [T, H] residual stream
  be.embedding(step.tokens, embed_tokens_, hidden);
  for (int l = 0; l < config_.num_hidden_layers; ++l)
    decoder_layer_forward(ctx, layer_options_, layers_[l], cache.layer(l), hidden);

  ForwardOutput out;
  const Tensor last = arena.alloc(DType::kF32, {R, H});  // [R, H] normed rows that need logits
  if (capture_hidden) {
    out.hidden = arena.alloc(DType::kF32, {T, H});
    be.rms_norm(hidden, norm_, config_.rms_norm_eps, false, out.hidden);
    if (R > 0) be.gather_rows(out.hidden, step.logit_rows, last);
  } else if (R > 0) {
    be.gather_rows(hidden, step.logit_rows, last);
    be.rms_norm(last, norm_, config_.rms_norm_eps, false, last);
  }
  out.logits = arena.alloc(DType::kF32, {R, V});
  if (R > 0) split_linear(be, step.decode_logit_rows, last, lm_head_, out.logits);
  return out;
}

namespace {
size_t mlp_bytes(const ops::MlpWeights& m) {
  return m.gate_proj.nbytes() + m.up_proj.nbytes() + m.down_proj.nbytes();
}
}  // namespace

size_t Glm4MoeForCausalLM::active_bytes_per_token() const {
  size_t total = norm_.nbytes() + lm_head_.nbytes() + embed_tokens_.nbytes() / config_.vocab_size;
  for (const auto& l : layers_) {
    total += l.input_layernorm.nbytes() + l.post_attention_layernorm.nbytes();
    const auto& a = l.self_attn;
    total += a.q_proj.nbytes() + a.k_proj.nbytes() + a.v_proj.nbytes() + a.o_proj.nbytes() + a.q_norm.nbytes() +
             a.k_norm.nbytes();
    if (!l.is_moe) {
      total += mlp_bytes(l.mlp);
      continue;
    }
    total += l.moe.gate.nbytes() + l.moe.e_score_correction_bias.nbytes();
    if (l.moe.has_shared) total += mlp_bytes(l.moe.shared_experts);
    if (!l.moe.experts.empty()) total += mlp_bytes(l.moe.experts[0]) * config_.num_experts_per_tok;
  }
  return total;
}

size_t Glm4MoeForCausalLM::total_weight_bytes() const {
  size_t total = active_bytes_per_token() - embed_tokens_.nbytes() / config_.vocab_size + embed_tokens_.nbytes();
  for (const auto& l : layers_)
    if (l.is_moe && !l.moe.experts.empty())
      total += mlp_bytes(l.moe.experts[0]) * (l.moe.experts.size() - config_.num_experts_per_tok);
  return total;
}

}  // namespace tandem::models::glm4_moe
