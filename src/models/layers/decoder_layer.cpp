#include "models/layers/decoder_layer.h"

#include "models/layers/row_split.h"

namespace tandem::models {

void decoder_layer_forward(const StepContext& ctx, const DecoderLayerOptions& opt, const DecoderLayerWeights& w,
                           const ops::KvLayerView& kv, const Tensor& hidden) {
  ops::Backend& be = ctx.backend;
  const int64_t T = hidden.dim(0), H = hidden.dim(1);
  const Tensor normed = ctx.arena.alloc(DType::kF32, {T, H});  // [T, H]
  const Tensor delta = ctx.arena.alloc(DType::kF32, {T, H});   // [T, H]

  be.rms_norm(hidden, w.input_layernorm, opt.rms_norm_eps, opt.unit_offset_norm, normed);
  attention_forward(ctx, opt.attn, w.self_attn, kv, normed, delta);
  be.add(hidden, delta, hidden);

  be.rms_norm(hidden, w.post_attention_layernorm, opt.rms_norm_eps, opt.unit_offset_norm, normed);
  if (w.is_moe) moe_forward(ctx, opt.routing, w.moe, normed, delta);
  else split_mlp(ctx, normed, w.mlp, delta);
  be.add(hidden, delta, hidden);
}

}  // namespace tandem::models
