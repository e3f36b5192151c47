// rms_norm and NeoX rotary embedding, written to give the CPU backend's bits.
//
// rms_norm: one block per row. The sum of squares is reduced in the exact order of the CPU's AVX-512
// sum_squares (vector_avx512.cpp): FMA accumulator i < 64 (4 zmm x 16 lanes) takes element i of every full
// 64-element chunk, accumulator i < 16 also element i of every 16 of the tail, then (a0 + a1) + (a2 + a3)
// lane-wise and hsum_avx512's halving tree. The order depends only on D, so a row's result never depends on
// the batch. Rows up to 10240 floats are first staged in shared memory by the whole block, so the 64 reducing
// threads do not serialise on global loads.
//
// rope_neox: inv_freq is computed on the host with the CPU backend's own expression (float std::pow, i.e.
// the same libm call) and passed by value in the kernel's arguments; the angle is the same f32 product, and
// cos / sin are evaluated in double and rounded once to f32 (what glibc's cosf / sinf give in all but rare
// near-midpoint cases). The rotation uses explicit _rn multiplies and adds, unfused like the CPU's.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ops/cuda/elem.cuh"
#include "ops/cuda/kernels.h"

namespace tandem::ops::cuda {
namespace {

constexpr int kNormThreads = 256;
constexpr int kSumLanes = 64;  // the CPU's 4 accumulators x 16 lanes
constexpr int kZmmLanes = 16;
constexpr int64_t kMaxGrid = int64_t{1} << 20;  // row loops stride past this many blocks
constexpr int64_t kMaxStagedBytes = 40 * 1024;  // rows up to 10240 floats are staged in shared memory

/// Accumulator `lane` of the CPU's AVX-512 sum of squares of x[0, D). x: [D] f32.
__device__ __forceinline__ float sum_squares_lane(const float* x, int64_t D, int lane) {
  const int64_t main_end = D / kSumLanes * kSumLanes;
  float acc = 0.0f;
  for (int64_t i = lane; i < main_end; i += kSumLanes) acc = __fmaf_rn(x[i], x[i], acc);
  if (lane < kZmmLanes)
    for (int64_t i = main_end + lane; i < D; i += kZmmLanes) acc = __fmaf_rn(x[i], x[i], acc);
  return acc;
}

/// The CPU's combine of its 64 accumulators: lane-wise (a0 + a1) + (a2 + a3), then hsum_avx512's tree
/// (lanes i + 8, then i + 4, i + 2, i + 1). partial: [64] f32.
__device__ float combine_lanes(const float* partial) {
  float v[kZmmLanes];
  for (int l = 0; l < kZmmLanes; ++l)
    v[l] = __fadd_rn(__fadd_rn(partial[l], partial[16 + l]), __fadd_rn(partial[32 + l], partial[48 + l]));
  for (int half = kZmmLanes / 2; half >= 1; half /= 2)
    for (int l = 0; l < half; ++l) v[l] = __fadd_rn(v[l], v[l + half]);
  return v[0];
}

template <Elem kElem>
__global__ void __launch_bounds__(kNormThreads) rms_norm_kernel(const float* x,      // [R, D]
                                                                const void* weight,  // [D] kElem
                                                                float eps, bool unit_offset,
                                                                float* out,  // [R, D], may alias x
                                                                int64_t R, int64_t D, bool staged) {
  extern __shared__ float row_smem[];  // [D] when staged, else unused
  __shared__ float partial[kSumLanes];
  __shared__ float inv_rms;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const float* xr = x + r * D;
    float* yr = out + r * D;
    // Staging the row lets all threads' loads be in flight at once; the 64 reducing threads then read
    // shared memory instead of waiting on global loads one after another.
    if (staged) {
      for (int64_t i = threadIdx.x; i < D; i += blockDim.x) row_smem[i] = xr[i];
      __syncthreads();
    }
    const float* row = staged ? row_smem : xr;
    if (threadIdx.x < kSumLanes) partial[threadIdx.x] = sum_squares_lane(row, D, threadIdx.x);
    __syncthreads();
    if (threadIdx.x == 0) {
      const float mean_sq = __fdiv_rn(combine_lanes(partial), static_cast<float>(D));
      inv_rms = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(mean_sq, eps)));
    }
    __syncthreads();
    const float inv = inv_rms;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
      float w = load_elem<kElem>(weight, i);
      if (unit_offset) w = __fadd_rn(w, 1.0f);
      yr[i] = __fmul_rn(__fmul_rn(row[i], inv), w);
    }
    __syncthreads();  // the next row rewrites row_smem, partial and inv_rms
  }
}

constexpr int kRopeThreads = 256;
constexpr int kMaxRopeHalf = 256;  // rot_dim <= 512

/// inv_freq[j] for j < rot_dim / 2, passed by value as a kernel argument (1 KiB).
struct InvFreq {
  float v[kMaxRopeHalf];
};

/// The CPU backend's inv_freq (norm_rope.cpp, HF's fp32 recipe) with the same float std::pow, so the same
/// libm gives the same bits. Cached per host thread for the last (theta, rot_dim).
const InvFreq& host_inv_freq(float theta, int rot_dim) {
  thread_local InvFreq table{};
  thread_local float cached_theta = 0.0f;
  thread_local int cached_rot_dim = 0;
  if (cached_rot_dim != rot_dim || !(cached_theta == theta)) {
    for (int j = 0; j < rot_dim / 2; ++j)
      table.v[j] = 1.0f / std::pow(theta, static_cast<float>(2 * j) / static_cast<float>(rot_dim));
    cached_theta = theta;
    cached_rot_dim = rot_dim;
  }
  return table;
}

// One block per token: the block evaluates the token's cos / sin once into shared memory, then rotates
// every head's first rot_dim dims (pairs j, j + half).
__global__ void __launch_bounds__(kRopeThreads)
    rope_neox_kernel(float* x,                  // [T, heads, D]
                     const int32_t* positions,  // [T]
                     int64_t T, int64_t heads, int64_t D, int half, const InvFreq inv_freq) {
  __shared__ float cs[kMaxRopeHalf];
  __shared__ float sn[kMaxRopeHalf];
  for (int64_t t = blockIdx.x; t < T; t += gridDim.x) {
    const float pos = static_cast<float>(positions[t]);
    for (int j = threadIdx.x; j < half; j += blockDim.x) {
      double s, c;
      sincos(static_cast<double>(__fmul_rn(pos, inv_freq.v[j])), &s, &c);
      cs[j] = static_cast<float>(c);
      sn[j] = static_cast<float>(s);
    }
    __syncthreads();
    for (int64_t k = threadIdx.x; k < heads * half; k += blockDim.x) {
      const int64_t h = k / half;
      const int j = static_cast<int>(k - h * half);
      float* v = x + (t * heads + h) * D;
      const float a = v[j], b = v[j + half];
      v[j] = __fsub_rn(__fmul_rn(a, cs[j]), __fmul_rn(b, sn[j]));
      v[j + half] = __fadd_rn(__fmul_rn(b, cs[j]), __fmul_rn(a, sn[j]));
    }
    __syncthreads();  // cs / sn are rewritten for the next token
  }
}

}  // namespace

cudaError_t rms_norm(const float* x, const void* weight, Elem elem, float eps, bool unit_offset, float* out,
                     int64_t R, int64_t D, cudaStream_t stream) {
  if (R <= 0 || D <= 0) return cudaSuccess;
  const unsigned blocks = static_cast<unsigned>(std::min(R, kMaxGrid));
  const bool staged = D * static_cast<int64_t>(sizeof(float)) <= kMaxStagedBytes;
  const size_t smem = staged ? static_cast<size_t>(D) * sizeof(float) : 0;
  return with_float_elem(elem, [&](auto e) {
    rms_norm_kernel<decltype(e)::value>
        <<<blocks, kNormThreads, smem, stream>>>(x, weight, eps, unit_offset, out, R, D, staged);
    return cudaGetLastError();
  });
}

cudaError_t rope_neox(float* x, const int32_t* positions, int64_t T, int64_t heads, int64_t D, int rot_dim,
                      float theta, cudaStream_t stream) {
  if (T <= 0 || heads <= 0) return cudaSuccess;
  if (rot_dim <= 0 || rot_dim % 2 != 0 || rot_dim > D || rot_dim / 2 > kMaxRopeHalf)
    return cudaErrorInvalidValue;
  const unsigned blocks = static_cast<unsigned>(std::min(T, kMaxGrid));
  rope_neox_kernel<<<blocks, kRopeThreads, 0, stream>>>(x, positions, T, heads, D, rot_dim / 2,
                                                        host_inv_freq(theta, rot_dim));
  return cudaGetLastError();
}

}  // namespace tandem::ops::cuda
