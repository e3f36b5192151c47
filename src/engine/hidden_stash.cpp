#include "engine/hidden_stash.h"

#include "core/error.h"

namespace tandem::engine {

HiddenStash::HiddenStash(ops::Backend& be, int slots, int64_t deferred_rows, int64_t extra_rows, int64_t hidden)
    : deferred_rows_(deferred_rows),
      rows_per_slot_(deferred_rows + extra_rows),
      pool_(be.alloc(DType::kF32, {static_cast<int64_t>(slots) * (deferred_rows + extra_rows), hidden})) {
  TANDEM_CHECK(slots >= 1 && deferred_rows >= 1 && extra_rows >= 1, "hidden stash: {} slots of {} + {} rows", slots,
               deferred_rows, extra_rows);
  for (int s = slots - 1; s >= 0; --s) free_.push_back(s);
}

int HiddenStash::acquire() {
  if (free_.empty()) return -1;
  const int s = free_.back();
  free_.pop_back();
  return s;
}

void HiddenStash::release(int slot) {
  if (slot >= 0) free_.push_back(slot);
}

void HiddenStash::write(ops::Backend& be, Arena& arena, const Tensor& target_hidden,
                        std::span<const Copy> copies) const {
  std::vector<int32_t> rows;  // [2, n]: source rows, then destination rows
  for (const Copy& c : copies)
    for (int64_t j = 0; j < c.n; ++j) rows.push_back(static_cast<int32_t>(c.src_row + j));
  const int64_t n = static_cast<int64_t>(rows.size());
  if (n == 0) return;
  for (const Copy& c : copies)
    for (int64_t j = 0; j < c.n; ++j) rows.push_back(static_cast<int32_t>(c.dst_row + j));
  const Tensor ids = arena.alloc(DType::kI32, {2, n});  // [2, n] source rows, destination rows
  be.upload(rows.data(), ids);
  be.copy_rows(target_hidden, ids.rows(0, 1).reshape({n}), pool(), ids.rows(1, 1).reshape({n}));
}

}  // namespace tandem::engine
