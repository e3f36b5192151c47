// A forward pass's metadata, built once per step. The engine describes the batch on the host (BatchDesc);
// Backend::begin_step turns it into backend-resident StepState (uploaded once, not per op), which every op that
// needs positions, slot addressing or block tables takes.
#pragma once

#include <cstdint>
#include <span>

#include "tensor/tensor.h"

namespace tandem::ops {

/// Where one sequence's new tokens sit in a batch and in its paged cache. Token j of the slice is at cache
/// position start_pos + j and attends causally to positions [0, start_pos + j].
struct SeqSlice {
  int64_t token_begin = 0;               // first row of this sequence in the batch's token rows
  int32_t n_tokens = 0;                  // new tokens of this sequence in the batch
  int32_t start_pos = 0;                 // cache position of the first new token
  const int32_t* block_table = nullptr;  // host: physical block per logical block; covers start_pos + n_tokens
};

/// The host description of one forward's batch. Spans are read by begin_step only.
struct BatchDesc {
  std::span<const int32_t> tokens;      // [T] token ids (may be empty when the caller supplies device ids)
  std::span<const int32_t> positions;   // [T] cache position of each row
  std::span<const SeqSlice> seqs;       // covers all T rows, in row order
  std::span<const int32_t> logit_rows;  // [R] rows whose logits are needed
  int block_size = 16;                  // KV positions per block (sizes the block-table columns)
  int64_t decode_rows = 0;              // rows [0, decode_rows) are decode / verify rows (exact linears, ops.h);
                                        // the rest are prefill rows. Their logit rows must come first.
};

/// Backend-resident step metadata (device memory from the step's arena). Valid until the arena resets.
struct StepState {
  Tensor tokens;        // [T] i32 token ids
  Tensor positions;     // [T] i32
  Tensor logit_rows;    // [R] i32
  Tensor seq_info;      // [S, 3] i32: token_begin, n_tokens, start_pos per sequence
  Tensor block_tables;  // [S, max_blocks] i32, each sequence's table padded with -1
  int64_t n_tokens = 0;
  int64_t n_seqs = 0;
  int64_t n_logit_rows = 0;
  int64_t max_blocks = 0;  // columns of block_tables
  int64_t decode_rows = 0;        // leading decode / verify rows of the T (BatchDesc::decode_rows)
  int64_t decode_logit_rows = 0;  // leading logit rows that are decode / verify rows (logit_rows[i] < decode_rows)
};

/// Field indexes of StepState::seq_info.
inline constexpr int kSeqTokenBegin = 0, kSeqNumTokens = 1, kSeqStartPos = 2, kSeqInfoCols = 3;

}  // namespace tandem::ops
