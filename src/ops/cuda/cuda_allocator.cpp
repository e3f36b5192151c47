#include "ops/cuda/cuda_allocator.h"

#include <cstdint>

#include "ops/cuda/cuda_check.h"

namespace tandem::ops::cuda {

CudaAllocator::CudaAllocator(int device, cudaStream_t stream) : device_(device), stream_(stream) {
  cudaMemPool_t pool = nullptr;
  CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_), "memory pool of GPU {}", device_);
  uint64_t keep = UINT64_MAX;  // never trim the pool between steps
  CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep), "pool threshold of GPU {}",
             device_);
}

void* CudaAllocator::allocate(size_t bytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaSetDevice(device_), "select GPU {}", device_);
  // Rounded up so every allocation is kAlignment-aligned in size as well as address (pool blocks are 256-aligned).
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  const cudaError_t e = cudaMallocAsync(&p, rounded, stream_);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error state so later calls report their own errors
    size_t free_bytes = 0, total = 0;
    cudaMemGetInfo(&free_bytes, &total);
    fail("CUDA: out of device memory on GPU {}: {} bytes requested, {} of {} bytes free ({})", device_, bytes,
         free_bytes, total, cudaGetErrorString(e));
  }
  return p;
}

void CudaAllocator::deallocate(void* p, size_t) {
  if (p == nullptr) return;
  cudaSetDevice(device_);
  cudaFreeAsync(p, stream_);  // a destructor path: errors here are reported by the next checked call
}

}  // namespace tandem::ops::cuda
