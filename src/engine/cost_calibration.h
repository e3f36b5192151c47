// The adaptive policy's start-up cost table: times real engine steps (target forward of batch x (K + 1) rows,
// the logits' download and a host pass over them, then the draft's extend + chain for K drafts, or the hidden
// stash copy at K = 0) on synthetic sequences, for each batch bucket and K. The engine refines it online.
#pragma once

#include <cstdint>

#include "engine/model_runner.h"
#include "kv/block_allocator.h"
#include "spec/cost_table.h"

namespace tandem::engine {

struct CalibrationOptions {
  int max_batch = 1;         // running requests (the last bucket is the first power of two >= this)
  int measured_batch = 32;   // buckets above this are extrapolated linearly (and refined online)
  int k_max = 1;
  int block_size = 16;
  int repeats = 7;           // timed runs per cell after a warm-up; the fastest is kept (interference only adds)
};

/// Measures C(batch, K) on `runner`, borrowing KV blocks from `allocator` for the synthetic sequences (all
/// returned before it returns). Buckets whose sequences do not fit the cache are extrapolated.
[[nodiscard]] spec::CostTable calibrate_step_costs(ModelRunner& runner, kv::BlockAllocator& allocator,
                                                   const CalibrationOptions& options);

}  // namespace tandem::engine
