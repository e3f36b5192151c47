// Open-addressing hash map from a BPE token pair (left id, right id) to the merge's (rank, merged id). BPE looks
// pairs up in its innermost loop; a flat table with linear probing beats std::unordered_map there severalfold.
#pragma once

#include <cstdint>
#include <vector>

namespace tandem::tokenizer {

class MergeMap {
 public:
  struct Merge {
    int32_t rank;
    int32_t id;
  };

  /// Sizes the table for `n` merges (call before inserting).
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    keys_.assign(cap, kEmpty);
    values_.assign(cap, Merge{0, 0});
    mask_ = cap - 1;
    size_ = 0;
  }

  /// Inserts the merge, replacing an earlier one for the same pair (as HF's map collect does: the later rank wins).
  void insert_or_assign(int32_t left, int32_t right, Merge m) {
    if (2 * (size_ + 1) > keys_.size()) grow();
    const uint64_t key = pack(left, right);
    size_t i = slot(key);
    while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask_;
    if (keys_[i] == kEmpty) ++size_;
    keys_[i] = key;
    values_[i] = m;
  }

  const Merge* find(int32_t left, int32_t right) const {
    if (keys_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }

  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(int32_t l, int32_t r) {
    return (uint64_t{static_cast<uint32_t>(l)} << 32) | static_cast<uint32_t>(r);
  }
  size_t slot(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ULL >> 17) & mask_; }

  void grow() {
    std::vector<uint64_t> old_keys = std::move(keys_);
    std::vector<Merge> old_values = std::move(values_);
    reserve(old_keys.empty() ? 8 : old_keys.size());
    for (size_t i = 0; i < old_keys.size(); ++i) {
      if (old_keys[i] != kEmpty) {
        insert_or_assign(static_cast<int32_t>(old_keys[i] >> 32), static_cast<int32_t>(old_keys[i] & 0xFFFFFFFF),
                         old_values[i]);
      }
    }
  }

  std::vector<uint64_t> keys_;
  std::vector<Merge> values_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace tandem::tokenizer
