// A per-step bump allocator for a forward pass's temporaries. reset() at the start of each step releases
// everything at once. Within a step, allocations with the same sequence of sizes get the same addresses (what
// CUDA-graph capture needs): when a step outgrows the arena it borrows overflow chunks for that step, and the
// next reset() replaces the arena by one chunk of the high-water size, so later steps of that shape fit it.
//
// Threading: one step at a time (the engine's thread). Tensors from an arena are valid until its next reset().
#pragma once

#include <cstddef>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/tensor.h"

namespace tandem {

class Arena {
 public:
  explicit Arena(Allocator& allocator, size_t initial_bytes = 0);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  /// An uninitialised tensor on the allocator's device, aligned to Allocator::kAlignment.
  [[nodiscard]] Tensor alloc(DType dtype, Shape shape);
  /// Releases every tensor handed out since the last reset.
  void reset();

  Device device() const { return allocator_.device(); }
  size_t capacity() const { return capacity_; }
  size_t used() const { return used_; }
  size_t high_water() const { return high_water_; }

 private:
  struct Chunk {
    void* p = nullptr;
    size_t bytes = 0;
  };
  Allocator& allocator_;
  Chunk main_;
  std::vector<Chunk> overflow_;  // chunks borrowed by this step beyond main_
  size_t capacity_ = 0;          // main_.bytes
  size_t used_ = 0;              // bytes of main_ handed out (all of them once overflowing)
  size_t step_bytes_ = 0;        // bytes handed out this step, overflow included
  size_t high_water_ = 0;        // largest step_bytes_ seen
};

}  // namespace tandem
