// Grouped-query self-attention as in Glm4Moe and Qwen3-Next: q/k/v projections (optional bias), optional
// per-head q/k RMSNorm before a partial NeoX rotary embedding, paged causal attention, optional sigmoid
// output gate (Qwen3-Next: q_proj also emits a per-head gate), o_proj.
#pragma once

#include "models/layers/context.h"

namespace tandem::models {

struct AttentionOptions {
  int n_heads = 0;            // Hq
  int n_kv_heads = 0;         // Hkv
  int head_dim = 0;           // D
  int rot_dim = 0;            // rotary dims per head (D * partial_rotary_factor)
  float rope_theta = 10000.0f;
  float rms_norm_eps = 1e-5f;
  bool qk_norm = false;       // per-head RMSNorm of q and k before RoPE
  bool unit_offset_norm = false;  // (1 + w) norms (Qwen3-Next)
  bool output_gate = false;   // q_proj emits [q | gate] per head; out *= sigmoid(gate)
};

struct AttentionWeights {
  ops::LinearWeight q_proj;  // [Hq * D * (output_gate ? 2 : 1), H] (+ bias)
  ops::LinearWeight k_proj;  // [Hkv * D, H] (+ bias)
  ops::LinearWeight v_proj;  // [Hkv * D, H] (+ bias)
  ops::LinearWeight o_proj;  // [H, Hq * D]
  Tensor q_norm;             // [D], only with qk_norm
  Tensor k_norm;             // [D], only with qk_norm
};

/// x [T, H] f32 (already normed) -> out [T, H] f32. Writes this batch's k/v into `kv` first.
void attention_forward(const StepContext& ctx, const AttentionOptions& opt, const AttentionWeights& w,
                       const ops::KvLayerView& kv, const Tensor& x, const Tensor& out);

}  // namespace tandem::models
