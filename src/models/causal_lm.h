// What a target model's forward pass takes and returns. One batch holds rows of several sequences; each
// sequence's rows are contiguous and described by an ops::SeqSlice.
#pragma once

#include <span>

#include "kv/kv_cache.h"
#include "ops/ops.h"

namespace tandem::models {

struct ForwardInput {
  std::span<const int32_t> tokens;       // [T]
  std::span<const int32_t> positions;    // [T]
  std::span<const ops::SeqSlice> seqs;   // covers all T rows
  std::span<const int32_t> logit_rows;   // batch rows whose logits are needed
  bool capture_hidden = false;           // also return the post-final-norm hidden state of every row
};

struct ForwardOutput {
  Buffer logits;  // [logit_rows.size(), V] f32
  Buffer hidden;  // [T, H] f32, post final norm (the vector fed to lm_head); only with capture_hidden
};

}  // namespace tandem::models
