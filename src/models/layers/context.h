// What one forward pass of a layer stack needs besides its weights, passed explicitly (no global context).
#pragma once

#include <span>

#include "ops/ops.h"

namespace tandem::models {

struct StepContext {
  ops::Backend& backend;
  std::span<const int32_t> positions;    // [T] cache position of each batch row
  std::span<const ops::SeqSlice> seqs;   // where each sequence's rows sit in the batch and its cache
};

}  // namespace tandem::models
