#include "models/layers/decoder_layer.h"

namespace tandem::models {

void decoder_layer_forward(const StepContext& ctx, const DecoderLayerOptions& opt, const DecoderLayerWeights& w,
                           const ops::KvLayerView& kv, const Tensor& hidden) {
  ops::Backend& be = ctx.backend;
  const int64_t T = hidden.dim(0), H = hidden.dim(1);
  Buffer normed = be.alloc(DType::kF32, {T, H});  // [T, H]
  Buffer delta = be.alloc(DType::kF32, {T, H});   // [T, H]

  be.rms_norm(hidden, w.input_layernorm, opt.rms_norm_eps, opt.unit_offset_norm, normed.view());
  attention_forward(ctx, opt.attn, w.self_attn, kv, normed.view(), delta.view());
  be.add(hidden, delta.view(), hidden);

  be.rms_norm(hidden, w.post_attention_layernorm, opt.rms_norm_eps, opt.unit_offset_norm, normed.view());
  if (w.is_moe) moe_forward(be, opt.routing, w.moe, normed.view(), delta.view());
  else mlp_forward(be, w.mlp, normed.view(), delta.view());
  be.add(hidden, delta.view(), hidden);
}

}  // namespace tandem::models
