#include "models/layers/moe.h"

namespace tandem::models {

void mlp_forward(ops::Backend& be, const ops::MlpWeights& w, const Tensor& x, const Tensor& out) {
  be.mlp(x, w, out);
}

void moe_forward(ops::Backend& be, const ops::MoeRouting& routing, const MoeWeights& w, const Tensor& x,
                 const Tensor& out) {
  const int64_t T = x.dim(0), H = x.dim(1), E = w.gate.out_features();
  Buffer logits = be.alloc(DType::kF32, {T, E});            // [T, E]
  Buffer ids = be.alloc(DType::kI32, {T, routing.top_k});   // [T, K]
  Buffer weights = be.alloc(DType::kF32, {T, routing.top_k});  // [T, K]
  be.linear(x, w.gate, logits.view());
  be.moe_route(logits.view(), w.e_score_correction_bias, routing, ids.view(), weights.view());

  // out = routed sum (+ shared experts, fused into the same pass unless a gate scales them).
  const bool gated_shared = w.has_shared && !w.shared_expert_gate.weight.empty();
  Buffer zero = be.alloc(DType::kF32, {T, H});  // [T, H]
  be.copy_cols(zero.view(), 0, out, 0, H);
  be.moe_experts(x, ids.view(), weights.view(), w.experts, w.has_shared && !gated_shared ? &w.shared_experts : nullptr,
                 out);
  if (gated_shared) {
    Buffer shared = be.alloc(DType::kF32, {T, H});  // [T, H]
    Buffer sg = be.alloc(DType::kF32, {T, 1});      // [T, 1]
    mlp_forward(be, w.shared_experts, x, shared.view());
    be.linear(x, w.shared_expert_gate, sg.view());
    be.mul_sigmoid(shared.view(), sg.view(), shared.view());
    be.add(out, shared.view(), out);
  }
}

}  // namespace tandem::models
