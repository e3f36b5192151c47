#include "models/mtp/mtp_draft.h"

#include "models/layers/row_split.h"
#include "models/layers/weights_util.h"

namespace tandem::models::mtp {

MtpDraft::MtpDraft(const MtpSpec& spec, loader::WeightMap& wm, const Tensor& target_embed,
                   const ops::LinearWeight& target_head, loader::LinearLoad load)
    : spec_(spec) {
  const MtpLayout& L = spec_.layout;
  const int64_t H = spec_.hidden_size, V = spec_.vocab_size;
  const std::string& p = L.prefix;
  embed_ = target_embed;
  head_ = target_head;
  if (!L.own_embed.empty() && wm.has(p + L.own_embed + ".weight")) {
    embed_ = wm.tensor(p + L.own_embed + ".weight", {V, H}, kFloatTypes);
    own_embed_ = true;
  }
  if (!L.own_head.empty() && wm.has(p + L.own_head + ".weight")) {
    // The head follows the draft precision policy too: it is a Linear of the MTP layer.
    head_ = wm.linear(p + L.own_head, V, H, loader::Bias::kNone, load);
    own_head_ = true;
  }
  norm_embedding_ = wm.tensor(p + L.norm_embedding + ".weight", {H}, kFloatTypes);
  norm_hidden_ = wm.tensor(p + L.norm_hidden + ".weight", {H}, kFloatTypes);
  fc_ = wm.linear(p + L.fc, H, 2 * H, loader::Bias::kNone, load);
  layer_ = spec_.load_layer(wm, p + L.decoder, load);
  final_norm_ = wm.tensor(p + L.final_norm + ".weight", {H}, kFloatTypes);
}

ForwardOutput MtpDraft::forward(ops::Backend& be, Arena& arena, const kv::KvCache& cache,
                               const DraftInput& in) const {
  const ops::StepState step = be.begin_step(
      ops::BatchDesc{.tokens = in.tokens, .positions = in.positions, .seqs = in.seqs, .logit_rows = in.logit_rows,
                     .block_size = cache.shape().block_size},
      arena);
  return forward(be, arena, cache, step, in.hidden);
}

ForwardOutput MtpDraft::forward(ops::Backend& be, Arena& arena, const kv::KvCache& cache,
                               const ops::StepState& batch, const Tensor& hidden) const {
  const int64_t T = batch.n_tokens, H = spec_.hidden_size, V = spec_.vocab_size, R = batch.n_logit_rows;
  // The draft's rows decide acceptance, never output (verification does), so none needs the exact linears: a
  // forward takes the faster entry point for its size, linear() up to kLinearExactRows rows and linear_prefill()
  // (a GEMM on the GPU) beyond, whatever kinds of rows the caller marked.
  ops::StepState step = batch;
  step.decode_rows = T <= ops::kLinearExactRows ? T : 0;
  step.decode_logit_rows = T <= ops::kLinearExactRows ? R : 0;
  TANDEM_CHECK(T > 0 && hidden.dim(0) == T && hidden.dim(1) == H, "draft forward: {} tokens, hidden {}", T,
               hidden.shape.str());
  const bool unit = spec_.layout.unit_offset_norms;
  const float eps = spec_.rms_norm_eps;

  const Tensor e = arena.alloc(DType::kF32, {T, H});        // [T, H]
  const Tensor cat = arena.alloc(DType::kF32, {T, 2 * H});  // [T, 2H] = [norm_embedding(e) | norm_hidden(h)]
  const Tensor hn = arena.alloc(DType::kF32, {T, H});       // [T, H]
  be.embedding(step.tokens, embed_, e);
  be.rms_norm(e, norm_embedding_, eps, unit, e);
  be.rms_norm(hidden, norm_hidden_, eps, unit, hn);
  be.copy_cols(e, 0, cat, 0, H);  // embedding first (vLLM, SGLang, llama.cpp agree)
  be.copy_cols(hn, 0, cat, H, H);

  const Tensor z = arena.alloc(DType::kF32, {T, H});  // [T, H] residual stream of the draft layer
  const StepContext ctx{be, arena, step};
  split_linear(ctx, cat, fc_, z);
  decoder_layer_forward(ctx, spec_.layer_options, layer_, cache.layer(0), z);

  ForwardOutput out;
  out.hidden = arena.alloc(DType::kF32, {T, H});
  be.rms_norm(z, final_norm_, eps, unit, out.hidden);
  out.logits = arena.alloc(DType::kF32, {R, V});
  if (R > 0) {
    const Tensor rows = arena.alloc(DType::kF32, {R, H});  // [R, H]
    be.gather_rows(out.hidden, step.logit_rows, rows);
    split_linear(be, step.decode_logit_rows, rows, head_, out.logits);
  }
  return out;
}

size_t MtpDraft::active_bytes_per_token() const {
  auto mlp = [](const ops::MlpWeights& m) { return m.gate_proj.nbytes() + m.up_proj.nbytes() + m.down_proj.nbytes(); };
  const auto& a = layer_.self_attn;
  size_t total = fc_.nbytes() + head_.nbytes() + norm_embedding_.nbytes() + norm_hidden_.nbytes() +
                 final_norm_.nbytes() + a.q_proj.nbytes() + a.k_proj.nbytes() + a.v_proj.nbytes() +
                 a.o_proj.nbytes() + 2 * embed_.nbytes() / spec_.vocab_size;
  if (layer_.is_moe) {
    total += layer_.moe.gate.nbytes();
    if (layer_.moe.has_shared) total += mlp(layer_.moe.shared_experts);
    if (!layer_.moe.experts.empty())
      total += mlp(layer_.moe.experts[0]) * static_cast<size_t>(spec_.layer_options.routing.top_k);
  } else {
    total += mlp(layer_.mlp);
  }
  return total;
}

}  // namespace tandem::models::mtp
