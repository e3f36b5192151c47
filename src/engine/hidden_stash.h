// Target hidden rows kept for the draft while speculation is paused. At K = 0 the draft's extend pass (one
// draft layer per step) would cost plain decoding a layer's worth of time per token; instead the engine copies
// each committed position's target hidden row here (one copy op per step for the whole batch) and runs the
// extend over all the kept rows at once when the request drafts again or its slot fills. The draft's KV and
// hidden state are therefore current whenever a draft is proposed: the extend is deferred, never skipped
// (TensorRT-LLM's stale-draft trap).
//
// One slot per running request: slot s owns rows [s * rows_per_slot, (s + 1) * rows_per_slot) of the pool.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ops/ops.h"

namespace tandem::engine {

class HiddenStash {
 public:
  /// slots: running requests; deferred_rows: rows kept before an extend is forced; extra_rows: the most rows one
  /// step adds on top (a verify's accepted drafts + 1), so a flush fits the slot with the step's own rows.
  HiddenStash(ops::Backend& be, int slots, int64_t deferred_rows, int64_t extra_rows, int64_t hidden);

  /// A free slot, or -1 when every slot is taken.
  [[nodiscard]] int acquire();
  void release(int slot);
  /// Rows a request may keep before its extend is forced.
  [[nodiscard]] int64_t deferred_rows() const { return deferred_rows_; }
  /// First pool row of a slot.
  [[nodiscard]] int64_t slot_row(int slot) const { return static_cast<int64_t>(slot) * rows_per_slot_; }
  /// [slots * rows_per_slot, H] f32, backend memory.
  [[nodiscard]] const Tensor& pool() const { return pool_.tensor(); }

  /// Target rows [src_row, src_row + n) go to pool rows [dst_row, dst_row + n).
  struct Copy {
    int64_t src_row = 0;
    int64_t dst_row = 0;
    int64_t n = 0;
  };
  /// All of a step's copies from target_hidden [T, H] in one op (one index upload, one launch).
  void write(ops::Backend& be, Arena& arena, const Tensor& target_hidden, std::span<const Copy> copies) const;

 private:
  int64_t deferred_rows_;
  int64_t rows_per_slot_;
  Buffer pool_;              // [slots * rows_per_slot, H] f32
  std::vector<int> free_;    // free slot ids
};

}  // namespace tandem::engine
