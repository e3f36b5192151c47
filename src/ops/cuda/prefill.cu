// The element-wise stages of a prefill linear around its cuBLASLt GEMM (prefill_gemm.h): activations and
// weights to bf16 operands with zero-padded rows, the fp8 scale and the bias applied to the f32 result, and the
// operands of the GEMM-rate probe.
//
// Every output element depends only on its own inputs (no reductions), so none of these depends on T or on the
// grid. Rows are padded to `ld` elements (a multiple of 8: 16-byte columns for cuBLASLt) with zeros, which add
// exact zero products to the GEMM. bf16 pairs are written as one 32-bit word (ld is even).
//
// 2-D kernels put bf16 pairs (or output columns) on x and rows on y, looping over rows past the grid's y limit.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "ops/cuda/elem.cuh"
#include "ops/cuda/kernels.h"
#include "ops/cuda/rows_launch.cuh"

namespace tandem::ops::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxGridX = int64_t{1} << 20;  // grids stride past this many blocks


/// f32 -> bf16 bits, round to nearest even (NaN stays NaN).
__device__ __forceinline__ uint32_t bf16_bits(float f) { return __bfloat16_as_ushort(__float2bfloat16_rn(f)); }

/// Two bf16 values as one 32-bit word, `lo` at the lower address.
__device__ __forceinline__ uint32_t bf16_pair(float lo, float hi) { return bf16_bits(lo) | (bf16_bits(hi) << 16); }

/// The part of f a bf16 does not hold: f - bf16(f), exact in f32 (part 1 of the two-term split f = hi + lo).
__device__ __forceinline__ float bf16_rest(float f) {
  return __fsub_rn(f, __bfloat162float(__float2bfloat16_rn(f)));
}

/// Term `part` (0: bf16(f), 1: bf16(f - bf16(f))) of the two-term bf16 split of f.
__device__ __forceinline__ float split_term(float f, int part) { return part == 0 ? f : bf16_rest(f); }

__global__ void to_bf16_rows_kernel(const float* x,  // [T, in]
                                    int64_t T, int64_t in,
                                    uint32_t* xb,  // [2, T, pairs] bf16 pairs (ld = 2 pairs): hi rows, lo rows
                                    int64_t pairs) {
  for (int64_t p = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; p < pairs; p += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = 2 * p;
    for (int64_t t = blockIdx.y; t < T; t += gridDim.y) {
      const float* row = x + t * in;
      const float a = j < in ? row[j] : 0.0f, b = j + 1 < in ? row[j + 1] : 0.0f;
      xb[t * pairs + p] = bf16_pair(a, b);
      xb[(T + t) * pairs + p] = bf16_pair(bf16_rest(a), bf16_rest(b));
    }
  }
}

/// W[o][i] as it enters the GEMM: the stored value (exact in f32), times its block's scale for kFp8Block.
template <Elem E>
__device__ __forceinline__ float gemm_weight(const DeviceLinear& w, int64_t o, int64_t i) {
  const float v = load_elem<E>(w.weight, o * w.in + i);
  if constexpr (E == Elem::kF8E4M3) {
    if (w.quant == Quant::kFp8Block) return __fmul_rn(v, w.scale[(o / w.block_out) * w.scale_cols + i / w.block_in]);
  }
  return v;
}

template <Elem E>
__global__ void weight_to_bf16_kernel(DeviceLinear w,
                                      uint32_t* wb,  // [parts, out, pairs] bf16 pairs (ld = 2 pairs)
                                      int64_t pairs, int parts) {
  for (int64_t p = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; p < pairs; p += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = 2 * p;
    for (int64_t o = blockIdx.y; o < w.out; o += gridDim.y) {
      const float lo = i < w.in ? gemm_weight<E>(w, o, i) : 0.0f;
      const float hi = i + 1 < w.in ? gemm_weight<E>(w, o, i + 1) : 0.0f;
      for (int part = 0; part < parts; ++part)
        wb[(part * w.out + o) * pairs + p] = bf16_pair(split_term(lo, part), split_term(hi, part));
    }
  }
}

__global__ void prefill_epilogue_kernel(const float* d,  // [2, T, w_parts, w.out]: the GEMM of every x / W term
                                        float* y,        // [T, w.out], ld ldy
                                        int64_t ldy, int64_t T, DeviceLinear w, int w_parts) {
  for (int64_t o = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; o < w.out; o += int64_t{gridDim.x} * blockDim.x) {
    float s = 1.0f;
    if (w.elem == Elem::kF8E4M3 && w.quant == Quant::kFp8Tensor) s = w.scale[0];
    if (w.elem == Elem::kF8E4M3 && w.quant == Quant::kFp8Channel) s = w.scale[o];
    const float b = w.bias ? w.bias[o] : -0.0f;
    const int64_t ldd = w_parts * w.out;
    for (int64_t t = blockIdx.y; t < T; t += gridDim.y) {
      // Smallest terms first: x_lo W_lo, x_lo W_hi, x_hi W_lo, then x_hi W_hi (a fixed order: rows are invariant).
      float acc = 0.0f;
      for (int xp = 1; xp >= 0; --xp)
        for (int wp = w_parts - 1; wp >= 0; --wp) acc = __fadd_rn(acc, d[(xp * T + t) * ldd + wp * w.out + o]);
      y[t * ldy + o] = __fadd_rn(__fmul_rn(acc, s), b);
    }
  }
}

/// Chris Wellons' lowbias32 integer hash.
__device__ __forceinline__ uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

__global__ void fill_bf16_hash_kernel(uint16_t* p,  // [n]
                                      int64_t n, uint32_t seed) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const uint32_t h = hash32(seed ^ hash32(static_cast<uint32_t>(i) ^ hash32(static_cast<uint32_t>(i >> 32))));
    p[i] = static_cast<uint16_t>(bf16_bits(static_cast<float>(h >> 8) * 0x1p-23f - 1.0f));  // [-1, 1)
  }
}

}  // namespace

cudaError_t to_bf16_split_rows(const float* x, int64_t T, int64_t in, uint16_t* xb, int64_t ld, cudaStream_t stream) {
  if (ld % 2 != 0 || ld < in || in < 0) return cudaErrorInvalidValue;
  if (T <= 0 || ld == 0) return cudaSuccess;
  const RowsLaunch l = rows_launch(T, ld / 2);
  to_bf16_rows_kernel<<<l.grid, l.block, 0, stream>>>(x, T, in, reinterpret_cast<uint32_t*>(xb), ld / 2);
  return cudaGetLastError();
}

cudaError_t weight_to_bf16(const DeviceLinear& w, uint16_t* wb, int64_t ld, int parts, cudaStream_t stream) {
  if (ld % 2 != 0 || ld < w.in || w.in < 0 || parts < 1 || parts > 2) return cudaErrorInvalidValue;
  if (w.out <= 0 || ld == 0) return cudaSuccess;
  const RowsLaunch l = rows_launch(w.out, ld / 2);
  uint32_t* pairs = reinterpret_cast<uint32_t*>(wb);
  switch (w.elem) {
    case Elem::kBF16:
      weight_to_bf16_kernel<Elem::kBF16><<<l.grid, l.block, 0, stream>>>(w, pairs, ld / 2, parts);
      break;
    case Elem::kF8E4M3:
      weight_to_bf16_kernel<Elem::kF8E4M3><<<l.grid, l.block, 0, stream>>>(w, pairs, ld / 2, parts);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t prefill_epilogue(const float* d, int w_parts, float* y, int64_t T, const DeviceLinear& w,
                             cudaStream_t stream) {
  if (T <= 0 || w.out <= 0) return cudaSuccess;
  if (w_parts < 1 || w_parts > 2) return cudaErrorInvalidValue;
  const RowsLaunch l = rows_launch(T, w.out);
  prefill_epilogue_kernel<<<l.grid, l.block, 0, stream>>>(d, y, w.out, T, w, w_parts);
  return cudaGetLastError();
}

cudaError_t fill_bf16_hash(uint16_t* p, int64_t n, uint32_t seed, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const int blocks = static_cast<int>(std::min((n + kThreads - 1) / kThreads, kMaxGridX));
  fill_bf16_hash_kernel<<<blocks, kThreads, 0, stream>>>(p, n, seed);
  return cudaGetLastError();
}

}  // namespace tandem::ops::cuda
