// What one forward pass of a layer stack needs besides its weights, passed explicitly (no global context):
// the backend, the step's arena for temporaries, and the step's backend-resident metadata.
#pragma once

#include "ops/ops.h"
#include "tensor/arena.h"

namespace tandem::models {

struct StepContext {
  ops::Backend& backend;
  Arena& arena;                 // temporaries; valid until the step ends
  const ops::StepState& state;  // positions, sequence slices, block tables of this forward
};

}  // namespace tandem::models
