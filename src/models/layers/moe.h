// Mixture-of-experts feed-forward block: fp32 router, routed SwiGLU experts, optional shared expert(s)
// (unscaled; optionally gated by sigmoid(shared_expert_gate(x)) as in Qwen3-Next).
#pragma once

#include <vector>

#include "models/layers/context.h"

namespace tandem::models {

struct MoeWeights {
  ops::LinearWeight gate;             // router [E, H]; computed in fp32
  Tensor e_score_correction_bias;     // [E] f32, selection only; empty if the family has none
  std::vector<ops::MlpWeights> experts;  // E routed experts, each gate/up [Im, H], down [H, Im]
  bool has_shared = false;
  ops::MlpWeights shared_experts;     // gate/up [Is, H], down [H, Is]
  ops::LinearWeight shared_expert_gate;  // [1, H]; empty weight when the family has none
};

/// out[T, H] = routed mixture + shared expert. x [T, H] f32 (normed).
void moe_forward(const StepContext& ctx, const ops::MoeRouting& routing, const MoeWeights& w, const Tensor& x,
                 const Tensor& out);

}  // namespace tandem::models
