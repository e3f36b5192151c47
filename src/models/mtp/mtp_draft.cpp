#include "models/mtp/mtp_draft.h"

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
  layer_ = spec_.load_layer(wm, p + L.decoder, load, owned_);
  final_norm_ = wm.tensor(p + L.final_norm + ".weight", {H}, kFloatTypes);
}

ForwardOutput MtpDraft::forward(ops::Backend& be, const kv::KvCache& cache, const DraftInput& in) const {
  const int64_t T = static_cast<int64_t>(in.tokens.size()), H = spec_.hidden_size, V = spec_.vocab_size;
  TANDEM_CHECK(T > 0 && in.hidden.dim(0) == T && in.hidden.dim(1) == H && in.positions.size() == in.tokens.size(),
               "draft forward: {} tokens, hidden {}, {} positions", T, in.hidden.shape.str(), in.positions.size());
  const bool unit = spec_.layout.unit_offset_norms;
  const float eps = spec_.rms_norm_eps;

  Buffer e = be.alloc(DType::kF32, {T, H});        // [T, H]
  Buffer cat = be.alloc(DType::kF32, {T, 2 * H});  // [T, 2H] = [norm_embedding(e) | norm_hidden(h)]
  Buffer hn = be.alloc(DType::kF32, {T, H});       // [T, H]
  be.embedding(in.tokens, embed_, e.view());
  be.rms_norm(e.view(), norm_embedding_, eps, unit, e.view());
  be.rms_norm(in.hidden, norm_hidden_, eps, unit, hn.view());
  be.copy_cols(e.view(), 0, cat.view(), 0, H);  // embedding first (vLLM, SGLang, llama.cpp agree)
  be.copy_cols(hn.view(), 0, cat.view(), H, H);

  Buffer z = be.alloc(DType::kF32, {T, H});  // [T, H] residual stream of the draft layer
  be.linear(cat.view(), fc_, z.view());
  const StepContext ctx{be, in.positions, in.seqs};
  decoder_layer_forward(ctx, spec_.layer_options, layer_, cache.layer(0), z.view());

  ForwardOutput out;
  out.hidden = be.alloc(DType::kF32, {T, H});
  be.rms_norm(z.view(), final_norm_, eps, unit, out.hidden.view());
  const int64_t R = static_cast<int64_t>(in.logit_rows.size());
  out.logits = be.alloc(DType::kF32, {R, V});
  if (R > 0) {
    Buffer rows = be.alloc(DType::kF32, {R, H});  // [R, H]
    be.gather_rows(out.hidden.view(), in.logit_rows, rows.view());
    be.linear(rows.view(), head_, out.logits.view());
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
