// Elementwise and data-movement kernels: add, silu_mul, mul_sigmoid, copy_cols, gather_rows, copy_rows,
// embedding.
// Every output element depends only on its own inputs, so the results are batch invariant by construction.
// They also match the CPU backend bit for bit where its math allows: silu_mul evaluates exp with the same
// Cephes polynomial as the CPU's AVX-512 kernel (same clamps, FMAs and roundings), and mul_sigmoid rounds a
// double exp to f32, which is what glibc's expf returns in all but rare near-midpoint cases. Explicit _rn
// intrinsics keep nvcc from contracting a multiply and an add into an FMA the CPU does not do.
//
// 2-D kernels put columns on x (threads within a row are coalesced) and rows on y, looping over rows past
// the grid's y limit.
#include <algorithm>
#include <cstdint>

#include "ops/cuda/elem.cuh"
#include "ops/cuda/kernels.h"
#include "ops/cuda/rows_launch.cuh"

namespace tandem::ops::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxGridX = int64_t{1} << 20;  // 1-D grids stride past this many blocks

int flat_blocks(int64_t n) {
  return static_cast<int>(std::min((n + kThreads - 1) / kThreads, kMaxGridX));
}


/// exp(x) computed exactly as the CPU backend's AVX-512 exp_ps (vector_avx512.cpp): the Cephes expf
/// polynomial with the same clamps (vminps / vmaxps return the constant for NaN), the same FMA chain, and
/// 2^n applied exactly (ldexpf, like vscalefps).
__device__ __forceinline__ float cephes_exp(float x) {
  x = x < 88.7f ? x : 88.7f;
  x = x > -104.0f ? x : -104.0f;
  const float n = rintf(__fmul_rn(x, 1.44269504088896341f));
  float r = __fmaf_rn(-n, 0.693359375f, x);
  r = __fmaf_rn(-n, -2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = __fmaf_rn(p, r, 1.3981999507e-3f);
  p = __fmaf_rn(p, r, 8.3334519073e-3f);
  p = __fmaf_rn(p, r, 4.1665795894e-2f);
  p = __fmaf_rn(p, r, 1.6666665459e-1f);
  p = __fmaf_rn(p, r, 5.0000001201e-1f);
  p = __fmaf_rn(p, __fmul_rn(r, r), __fadd_rn(r, 1.0f));
  return ldexpf(p, static_cast<int>(n));
}

/// expf as glibc computes it (correctly rounded but for rare cases): exp in double, rounded once to f32.
__device__ __forceinline__ float exp_f32(float x) {
  return static_cast<float>(exp(static_cast<double>(x)));
}

__global__ void add_kernel(const float* a,  // [n]
                           const float* b,  // [n]
                           float* out,      // [n], may alias a or b
                           int64_t n) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = __fadd_rn(a[i], b[i]);
}

// out = silu(g) * u with silu(g) = g / (1 + exp(-g)), as the CPU's vector kernel orders it.
__global__ void silu_mul_kernel(const float* gate,  // [n]
                                const float* up,    // [n]
                                float* out,         // [n], may alias gate or up
                                int64_t n) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float g = gate[i];
    const float silu = __fdiv_rn(g, __fadd_rn(1.0f, cephes_exp(__fsub_rn(0.0f, g))));
    out[i] = __fmul_rn(silu, up[i]);
  }
}

__global__ void mul_sigmoid_kernel(const float* x,     // [R, n]
                                   const float* gate,  // [R, gate_cols], gate_cols == n or 1
                                   int64_t gate_cols,
                                   float* out,  // [R, n], may alias x
                                   int64_t R, int64_t n) {
  const int64_t j = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (j >= n) return;
  for (int64_t r = blockIdx.y; r < R; r += gridDim.y) {
    const float g = gate[r * gate_cols + (gate_cols == 1 ? 0 : j)];
    const float sigmoid = __fdiv_rn(1.0f, __fadd_rn(1.0f, exp_f32(-g)));
    out[r * n + j] = __fmul_rn(x[r * n + j], sigmoid);
  }
}

__global__ void copy_cols_kernel(const float* src,  // [R, src_stride]
                                 int64_t src_stride, int64_t src_col,
                                 float* dst,  // [R, dst_stride]
                                 int64_t dst_stride, int64_t dst_col, int64_t R, int64_t n_cols) {
  const int64_t j = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (j >= n_cols) return;
  for (int64_t r = blockIdx.y; r < R; r += gridDim.y)
    dst[r * dst_stride + dst_col + j] = src[r * src_stride + src_col + j];
}

// Rows move as `Word`s (16, 8, 4 or 1 bytes, the widest that the row size and both pointers allow).
template <class Word>
__global__ void gather_rows_kernel(const Word* src,      // [*, words]
                                   const int32_t* rows,  // [n]
                                   Word* dst,            // [n, words]
                                   int64_t n, int64_t words) {
  const int64_t j = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (j >= words) return;
  for (int64_t i = blockIdx.y; i < n; i += gridDim.y) dst[i * words + j] = src[int64_t{rows[i]} * words + j];
}

template <class Word>
__global__ void copy_rows_kernel(const Word* src,          // [*, words]
                                 const int32_t* src_rows,  // [n]
                                 Word* dst,                // [*, words]
                                 const int32_t* dst_rows,  // [n]
                                 int64_t n, int64_t words) {
  const int64_t j = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (j >= words) return;
  for (int64_t i = blockIdx.y; i < n; i += gridDim.y)
    dst[int64_t{dst_rows[i]} * words + j] = src[int64_t{src_rows[i]} * words + j];
}

template <Elem kElem>
__global__ void embedding_kernel(const int32_t* ids,  // [n]
                                 const void* table,   // [V, H] kElem
                                 int64_t V, int64_t H,
                                 float* out,  // [n, H]
                                 int64_t n) {
  const int64_t j = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (j >= H) return;
  for (int64_t i = blockIdx.y; i < n; i += gridDim.y) {
    const int64_t id = ids[i];
    out[i * H + j] = id >= 0 && id < V ? load_elem<kElem>(table, id * H + j) : __uint_as_float(0x7fc00000u);
  }
}

template <class Word>
cudaError_t launch_gather(const void* src, const int32_t* rows, void* dst, int64_t n, int64_t row_bytes,
                          cudaStream_t stream) {
  const int64_t words = row_bytes / static_cast<int64_t>(sizeof(Word));
  const RowsLaunch l = rows_launch(n, words);
  gather_rows_kernel<Word><<<l.grid, l.block, 0, stream>>>(static_cast<const Word*>(src), rows,
                                                           static_cast<Word*>(dst), n, words);
  return cudaGetLastError();
}

template <class Word>
cudaError_t launch_copy_rows(const void* src, const int32_t* src_rows, void* dst, const int32_t* dst_rows, int64_t n,
                             int64_t row_bytes, cudaStream_t stream) {
  const int64_t words = row_bytes / static_cast<int64_t>(sizeof(Word));
  const RowsLaunch l = rows_launch(n, words);
  copy_rows_kernel<Word><<<l.grid, l.block, 0, stream>>>(static_cast<const Word*>(src), src_rows,
                                                         static_cast<Word*>(dst), dst_rows, n, words);
  return cudaGetLastError();
}

/// The widest word (16, 8, 4 or 1 bytes) that the row size and both pointers allow.
template <class Launch>
cudaError_t by_word(const void* src, const void* dst, int64_t row_bytes, Launch&& launch) {
  const auto fits = [&](uint64_t width) {
    return static_cast<uint64_t>(row_bytes) % width == 0 && reinterpret_cast<uintptr_t>(src) % width == 0 &&
           reinterpret_cast<uintptr_t>(dst) % width == 0;
  };
  if (fits(16)) return launch(uint4{});
  if (fits(8)) return launch(uint2{});
  if (fits(4)) return launch(uint32_t{});
  return launch(uint8_t{});
}

}  // namespace

cudaError_t add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  add_kernel<<<flat_blocks(n), kThreads, 0, stream>>>(a, b, out, n);
  return cudaGetLastError();
}

cudaError_t silu_mul(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  silu_mul_kernel<<<flat_blocks(n), kThreads, 0, stream>>>(gate, up, out, n);
  return cudaGetLastError();
}

cudaError_t mul_sigmoid(const float* x, const float* gate, int64_t gate_cols, float* out, int64_t R,
                        int64_t n, cudaStream_t stream) {
  if (R <= 0 || n <= 0) return cudaSuccess;
  if (gate_cols != 1 && gate_cols != n) return cudaErrorInvalidValue;
  const RowsLaunch l = rows_launch(R, n);
  mul_sigmoid_kernel<<<l.grid, l.block, 0, stream>>>(x, gate, gate_cols, out, R, n);
  return cudaGetLastError();
}

cudaError_t copy_cols(const float* src, int64_t src_stride, int64_t src_col, float* dst, int64_t dst_stride,
                      int64_t dst_col, int64_t R, int64_t n_cols, cudaStream_t stream) {
  if (R <= 0 || n_cols <= 0) return cudaSuccess;
  const RowsLaunch l = rows_launch(R, n_cols);
  copy_cols_kernel<<<l.grid, l.block, 0, stream>>>(src, src_stride, src_col, dst, dst_stride, dst_col, R,
                                                   n_cols);
  return cudaGetLastError();
}

cudaError_t gather_rows(const void* src, const int32_t* rows, void* dst, int64_t n, int64_t row_bytes,
                        cudaStream_t stream) {
  if (n <= 0 || row_bytes <= 0) return cudaSuccess;
  return by_word(src, dst, row_bytes, [&](auto word) {
    return launch_gather<decltype(word)>(src, rows, dst, n, row_bytes, stream);
  });
}

cudaError_t copy_rows(const void* src, const int32_t* src_rows, void* dst, const int32_t* dst_rows, int64_t n,
                      int64_t row_bytes, cudaStream_t stream) {
  if (n <= 0 || row_bytes <= 0) return cudaSuccess;
  return by_word(src, dst, row_bytes, [&](auto word) {
    return launch_copy_rows<decltype(word)>(src, src_rows, dst, dst_rows, n, row_bytes, stream);
  });
}

cudaError_t embedding(const int32_t* ids, int64_t n, const void* table, Elem elem, int64_t V, int64_t H,
                      float* out, cudaStream_t stream) {
  if (n <= 0 || H <= 0) return cudaSuccess;
  const RowsLaunch l = rows_launch(n, H);
  return with_float_elem(elem, [&](auto e) {
    embedding_kernel<decltype(e)::value><<<l.grid, l.block, 0, stream>>>(ids, table, V, H, out, n);
    return cudaGetLastError();
  });
}

}  // namespace tandem::ops::cuda
