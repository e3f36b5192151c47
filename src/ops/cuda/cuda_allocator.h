// Device memory of one GPU, stream-ordered and cached: allocate / deallocate go through the stream's memory
// pool (cudaMallocAsync / cudaFreeAsync) whose release threshold is unlimited, so memory a step frees is
// reused by the next without returning to the driver. Weights, the KV cache and the step arena all come from
// here; the pool's size is what the memory plan budgets.
#pragma once

#include <cuda_runtime_api.h>

#include "tensor/allocator.h"

namespace tandem::ops::cuda {

class CudaAllocator final : public Allocator {
 public:
  CudaAllocator(int device, cudaStream_t stream);
  Device device() const override { return Device{.kind = DeviceKind::kCuda, .index = device_}; }
  void* allocate(size_t bytes) override;
  void deallocate(void* p, size_t bytes) override;

 private:
  int device_;
  cudaStream_t stream_;
};

}  // namespace tandem::ops::cuda
