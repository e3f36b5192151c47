#include "models/layers/moe.h"

#include "models/layers/row_split.h"

namespace tandem::models {

void moe_forward(const StepContext& ctx, const ops::MoeRouting& routing, const MoeWeights& w, const Tensor& x,
                 const Tensor& out) {
  ops::Backend& be = ctx.backend;
  Arena& arena = ctx.arena;
  const int64_t T = x.dim(0), H = x.dim(1), E = w.gate.out_features();
  const Tensor logits = arena.alloc(DType::kF32, {T, E});              // [T, E]
  const Tensor ids = arena.alloc(DType::kI32, {T, routing.top_k});     // [T, K]
  const Tensor weights = arena.alloc(DType::kF32, {T, routing.top_k});  // [T, K]
  split_linear(ctx, x, w.gate, logits);
  be.moe_route(logits, w.e_score_correction_bias, routing, ids, weights);

  // out = routed sum (+ shared experts, fused into the same pass unless a gate scales them).
  const bool gated_shared = w.has_shared && !w.shared_expert_gate.weight.empty();
  be.fill_zero(out);
  be.moe_experts(x, ids, weights, w.experts, w.has_shared && !gated_shared ? &w.shared_experts : nullptr, out);
  if (gated_shared) {
    const Tensor shared = arena.alloc(DType::kF32, {T, H});  // [T, H]
    const Tensor sg = arena.alloc(DType::kF32, {T, 1});      // [T, 1]
    split_mlp(ctx, x, w.shared_experts, shared);
    split_linear(ctx, x, w.shared_expert_gate, sg);
    be.mul_sigmoid(shared, sg, shared);
    be.add(out, shared, out);
  }
}

}  // namespace tandem::models
