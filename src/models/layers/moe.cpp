#include "models/layers/moe.h"

namespace tandem::models {

void mlp_forward(ops::Backend& be, const ops::MlpWeights& w, const Tensor& x, const Tensor& out) {
  const int64_t T = x.dim(0), I = w.gate_proj.out_features();
  Buffer g = be.alloc(DType::kF32, {T, I});  // [T, I]
  Buffer u = be.alloc(DType::kF32, {T, I});  // [T, I]
  be.linear(x, w.gate_proj, g.view());
  be.linear(x, w.up_proj, u.view());
  be.silu_mul(g.view(), u.view(), g.view());
  be.linear(g.view(), w.down_proj, out);
}

void moe_forward(ops::Backend& be, const ops::MoeRouting& routing, const MoeWeights& w, const Tensor& x,
                 const Tensor& out) {
  const int64_t T = x.dim(0), H = x.dim(1), E = w.gate.out_features();
  Buffer logits = be.alloc(DType::kF32, {T, E});            // [T, E]
  Buffer ids = be.alloc(DType::kI32, {T, routing.top_k});   // [T, K]
  Buffer weights = be.alloc(DType::kF32, {T, routing.top_k});  // [T, K]
  be.linear(x, w.gate, logits.view());
  be.moe_route(logits.view(), w.e_score_correction_bias, routing, ids.view(), weights.view());

  if (w.has_shared) {
    mlp_forward(be, w.shared_experts, x, out);
    if (!w.shared_expert_gate.weight.empty()) {
      Buffer sg = be.alloc(DType::kF32, {T, 1});  // [T, 1]
      be.linear(x, w.shared_expert_gate, sg.view());
      be.mul_sigmoid(out, sg.view(), out);
    }
  } else {
    Buffer zero = be.alloc(DType::kF32, {T, H});
    be.copy_cols(zero.view(), 0, out, 0, H);
  }
  be.moe_experts(x, ids.view(), weights.view(), w.experts, out);
}

}  // namespace tandem::models
