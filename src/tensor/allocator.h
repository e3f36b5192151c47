// Allocators hand out raw memory of one device. Memory is NOT initialised: a caller that needs zeros fills
// them (Backend::fill_zero on device memory, std::memset on host memory).
#pragma once

#include <cstddef>

#include "tensor/device.h"

namespace tandem {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual Device device() const = 0;
  /// At least `bytes` (> 0) bytes aligned to kAlignment, uninitialised. Throws tandem::Error when out of memory.
  virtual void* allocate(size_t bytes) = 0;
  /// Returns memory from allocate() with the same byte count.
  virtual void deallocate(void* p, size_t bytes) = 0;

  static constexpr size_t kAlignment = 256;  // cache lines on the host; vector loads / TMA on a GPU
};

/// Host memory (aligned_alloc). Stateless, so one shared instance serves every caller.
Allocator& host_allocator();

}  // namespace tandem
