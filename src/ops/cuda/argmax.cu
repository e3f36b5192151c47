// argmax_rows: one block per row. Each thread scans its strided share of the row, then a warp-shuffle and a
// cross-warp reduction pick the best (value, index) under a total order: higher value first, then lower
// index. NaN is never a candidate, so the result is the CPU loop's `if (row[v] > row[best]) best = v` from
// best = 0: the first maximum of the non-NaN values, or 0 when row[0] is NaN (nothing compares greater than
// it) or when every value is NaN. The answer is unique, so neither the block shape nor the batch changes it.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ops/cuda/kernels.h"

namespace tandem::ops::cuda {
namespace {

constexpr int kThreads = 1024;  // the kernel assumes blockDim.x == kThreads
constexpr int kUnroll = 4;
constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int64_t kMaxGrid = int64_t{1} << 20;  // row loops stride past this many blocks

/// A (value, index) candidate; index < 0 is "none yet".
struct Cand {
  float value;
  int index;
};

/// Whether a ranks before b: any candidate before none, higher value first, then lower index.
__device__ __forceinline__ bool ranks_before(Cand a, Cand b) {
  if (a.index < 0 || b.index < 0) return b.index < 0 && a.index >= 0;
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

/// Offers element i (scanned in ascending i within a thread) to the thread's candidate; NaN is skipped.
__device__ __forceinline__ void offer(Cand& c, float value, int i) {
  if (!isnan(value) && (c.index < 0 || value > c.value)) c = Cand{value, i};
}

/// Offers elements i .. i + 3.
__device__ __forceinline__ void offer4(Cand& c, float4 v, int i) {
  offer(c, v.x, i);
  offer(c, v.y, i + 1);
  offer(c, v.z, i + 2);
  offer(c, v.w, i + 3);
}

__device__ __forceinline__ Cand warp_best(Cand c) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const Cand other{__shfl_xor_sync(kFullMask, c.value, offset),
                     __shfl_xor_sync(kFullMask, c.index, offset)};
    if (ranks_before(other, c)) c = other;
  }
  return c;
}

// kVec4: rows are read as float4 (V % 4 == 0 and logits 16-byte aligned).
template <bool kVec4>
__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* logits,  // [R, V]
                                                          int64_t R, int V,
                                                          int32_t* ids) {  // [R]
  __shared__ Cand warp_cand[kThreads / kWarp];
  const int lane = static_cast<int>(threadIdx.x) % kWarp, warp = static_cast<int>(threadIdx.x) / kWarp;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const float* row = logits + r * V;
    Cand c{0.0f, -1};
    // A thread's elements are offered in ascending index order; kUnroll loads are issued before they are
    // compared, so a block keeps enough bytes in flight to stream the row.
    if constexpr (kVec4) {
      const float4* row4 = reinterpret_cast<const float4*>(row);
      const int n4 = V / 4;
      int q = static_cast<int>(threadIdx.x);
      for (; q + (kUnroll - 1) * kThreads < n4; q += kUnroll * kThreads) {
        float4 v[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) v[u] = row4[q + u * kThreads];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) offer4(c, v[u], 4 * (q + u * kThreads));
      }
      for (; q < n4; q += kThreads) offer4(c, row4[q], 4 * q);
    } else {
      int i = static_cast<int>(threadIdx.x);
      for (; i + (kUnroll - 1) * kThreads < V; i += kUnroll * kThreads) {
        float v[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) v[u] = row[i + u * kThreads];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) offer(c, v[u], i + u * kThreads);
      }
      for (; i < V; i += kThreads) offer(c, row[i], i);
    }
    c = warp_best(c);
    if (lane == 0) warp_cand[warp] = c;
    __syncthreads();
    if (warp == 0) {
      c = lane < kThreads / kWarp ? warp_cand[lane] : Cand{0.0f, -1};
      c = warp_best(c);
      if (lane == 0) ids[r] = c.index < 0 || isnan(row[0]) ? 0 : c.index;
    }
    __syncthreads();  // warp_cand is rewritten for the next row
  }
}

}  // namespace

cudaError_t argmax_rows(const float* logits, int64_t R, int64_t V, int32_t* ids, cudaStream_t stream) {
  if (R <= 0) return cudaSuccess;
  if (V > INT32_MAX - 2 * kUnroll * kThreads)
    return cudaErrorInvalidValue;  // i32 ids; index math stays in int
  if (V <= 0)
    return cudaMemsetAsync(ids, 0, static_cast<size_t>(R) * sizeof(int32_t), stream);  // as the CPU: 0
  const unsigned blocks = static_cast<unsigned>(std::min(R, kMaxGrid));
  const bool vec4 = V % 4 == 0 && reinterpret_cast<uintptr_t>(logits) % 16 == 0;
  if (vec4)
    argmax_kernel<true><<<blocks, kThreads, 0, stream>>>(logits, R, static_cast<int>(V), ids);
  else
    argmax_kernel<false><<<blocks, kThreads, 0, stream>>>(logits, R, static_cast<int>(V), ids);
  return cudaGetLastError();
}

}  // namespace tandem::ops::cuda
