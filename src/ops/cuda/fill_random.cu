// Backend::fill_random on the GPU (--load-format dummy makes every weight with it, in device memory): element
// i is ops/fill_random.h's value of (seed, i), the header the CPU backend calls too, so the bits match the
// CPU's by construction. A grid-stride loop, one element per thread per iteration: the elements are
// independent, so the launch shape changes nothing, and the kernel is bound by its stores (a 100 GB model
// fills in well under a second).
#include <algorithm>
#include <cstdint>

#include "ops/cuda/kernels.h"
#include "ops/fill_random.h"

namespace tandem::ops::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;  // then the threads stride

template <Elem kElem>
__global__ void fill_random_kernel(void* data,  // [n] kElem
                                   int64_t n, uint64_t seed, float lo, float hi) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = fill_random::uniform(seed, static_cast<uint64_t>(i), lo, hi);
    if constexpr (kElem == Elem::kF32) {
      static_cast<float*>(data)[i] = v;
    } else if constexpr (kElem == Elem::kBF16) {
      static_cast<uint16_t*>(data)[i] = fill_random::to_bf16(v);
    } else if constexpr (kElem == Elem::kF16) {
      static_cast<uint16_t*>(data)[i] = fill_random::to_f16(v);
    } else {
      static_cast<uint8_t*>(data)[i] = fill_random::to_f8e4m3(v);
    }
  }
}

template <Elem kElem>
cudaError_t launch_fill(void* data, int64_t n, uint64_t seed, float lo, float hi, cudaStream_t stream) {
  const int blocks = static_cast<int>(std::min((n + kThreads - 1) / kThreads, kMaxBlocks));
  fill_random_kernel<kElem><<<blocks, kThreads, 0, stream>>>(data, n, seed, lo, hi);
  return cudaGetLastError();
}

}  // namespace

cudaError_t fill_random(void* data, Elem elem, int64_t n, uint64_t seed, float lo, float hi,
                        cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  switch (elem) {
    case Elem::kF32:
      return launch_fill<Elem::kF32>(data, n, seed, lo, hi, stream);
    case Elem::kBF16:
      return launch_fill<Elem::kBF16>(data, n, seed, lo, hi, stream);
    case Elem::kF16:
      return launch_fill<Elem::kF16>(data, n, seed, lo, hi, stream);
    case Elem::kF8E4M3:
      return launch_fill<Elem::kF8E4M3>(data, n, seed, lo, hi, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace tandem::ops::cuda
