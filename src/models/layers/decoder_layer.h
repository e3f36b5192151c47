// A pre-norm transformer decoder layer: h = x + attn(norm(x)); out = h + ffn(norm(h)), where ffn is a dense
// SwiGLU MLP or an MoE block. Shared by Glm4Moe's main layers, its NextN layer and Qwen3-Next's MTP layer.
#pragma once

#include "models/layers/attention.h"
#include "models/layers/moe.h"

namespace tandem::models {

struct DecoderLayerOptions {
  AttentionOptions attn;
  ops::MoeRouting routing;  // used when the layer is MoE
  float rms_norm_eps = 1e-5f;
  bool unit_offset_norm = false;  // (1 + w) layer norms (Qwen3-Next)
};

struct DecoderLayerWeights {
  Tensor input_layernorm;           // [H]
  Tensor post_attention_layernorm;  // [H]
  AttentionWeights self_attn;
  bool is_moe = false;
  ops::MlpWeights mlp;              // dense layers
  MoeWeights moe;                   // MoE layers
};

/// hidden [T, H] f32 is the residual stream, updated in place.
void decoder_layer_forward(const StepContext& ctx, const DecoderLayerOptions& opt, const DecoderLayerWeights& w,
                           const ops::KvLayerView& kv, const Tensor& hidden);

}  // namespace tandem::models
