// What a target model's forward pass takes and returns. One batch holds rows of several sequences; each
// sequence's rows are contiguous and described by an ops::SeqSlice.
#pragma once

#include <span>

#include "kv/kv_cache.h"
#include "ops/ops.h"

namespace tandem::models {

/// A batch described on the host; forward() turns it into StepState once (Backend::begin_step).
struct ForwardInput {
  std::span<const int32_t> tokens;       // [T]
  std::span<const int32_t> positions;    // [T]
  std::span<const ops::SeqSlice> seqs;   // covers all T rows
  std::span<const int32_t> logit_rows;   // batch rows whose logits are needed
  int64_t decode_rows = 0;               // leading decode / verify rows (ops::BatchDesc::decode_rows)
  bool capture_hidden = false;           // also return the post-final-norm hidden state of every row
};

/// Backend tensors from the step's arena: valid until the arena resets.
struct ForwardOutput {
  Tensor logits;  // [logit_rows, V] f32
  Tensor hidden;  // [T, H] f32, post final norm (the vector fed to lm_head); only with capture_hidden (target)
};

/// The host batch as the backend's BatchDesc, for a cache with `block_size`.
inline ops::BatchDesc batch_desc(const ForwardInput& in, int block_size) {
  return ops::BatchDesc{.tokens = in.tokens, .positions = in.positions, .seqs = in.seqs,
                        .logit_rows = in.logit_rows, .block_size = block_size, .decode_rows = in.decode_rows};
}

}  // namespace tandem::models
