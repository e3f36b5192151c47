// The device-side core shared by linear.cu and moe_experts.cu: decoding weight elements (f32, bf16, f16 and
// fp8 e4m3 with per-tensor, per-channel or block scales) and one warp's dot products of R weight rows with G
// rows of f32 activations.
//
// Work layout: one warp reads R weight rows (of one or several matrices with the same element type and
// `in`) and G activation rows held by pointer. The row is cut into 16-byte vectors of V = 16 / sizeof(elem)
// elements; lane l takes vectors l, l + 32, l + 64, ... in ascending order and, per vector, its elements in
// ascending order, into one f32 accumulator per (weight row, activation row) with fmaf. Afterwards a fixed
// xor butterfly (offsets 16, 8, 4, 2, 1) sums the 32 lanes; every lane ends with the same bits.
//
// Batch invariance: the sequence of operations producing acc[r][t] depends only on `in`, the element type,
// W's row and x's row: not on R, G, which other rows share the warp, T, the grid or the load path. Each
// weight vector is loaded once per warp and serves all G activation rows, so a group of G rows reads the
// weights once. 16-byte loads (weights: no L1 allocation) are used when every weight row is 16-byte aligned;
// otherwise (an `in` whose rows are not) element loads build the same vectors, zero-filled past `in`, and the
// arithmetic is unchanged (a zero tail adds fmaf(0, 0, acc), the same for every call with that `in`).
//
// Weight element values: bf16 and f16 widen exactly; e4m3 goes through cvt.rn.f16x2.e4m3x2 (exact, 0x7f /
// 0xff decode to NaN). fp8 scales: kFp8Tensor / kFp8Channel multiply the finished sum (then bias is added,
// as the CPU kernel does); kFp8Block multiplies each decoded element by its block's scale before the fmaf
// (the CPU folds the scale into x instead: the products can differ in the last bit).
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "ops/cuda/kernels.h"

namespace tandem::ops::cuda::gemv {

inline constexpr int kWarpsPerBlock = 4;
inline constexpr int kThreads = kWarpsPerBlock * 32;
/// Weight bytes a warp keeps in flight per loop iteration (R rows x U vectors x 512 bytes).
inline constexpr int kBytesInFlight = 2048;

/// __launch_bounds__ minimum blocks per SM for kernels whose warps serve up to G activation rows: small
/// groups (decode) keep 20-24 warps per SM for loads in flight; larger groups need registers for their
/// accumulators and x values.
__host__ __device__ constexpr int min_blocks_for_group(int G) {
  return G <= 1 ? 6 : G <= 2 ? 5 : G <= 4 ? 4 : 3;
}

template <Elem E>
inline constexpr int kElemBytes = E == Elem::kF32 ? 4 : E == Elem::kF8E4M3 ? 1 : 2;
/// Elements per 16-byte vector.
template <Elem E>
inline constexpr int kVec = 16 / kElemBytes<E>;

__host__ __device__ constexpr int elem_bytes(Elem e) {
  return e == Elem::kF32 ? 4 : e == Elem::kF8E4M3 ? 1 : 2;
}

/// Whether a weight's rows can be read as 16-byte vectors: base aligned and every row a whole number of them.
__host__ __device__ inline bool rows_vectorizable(const DeviceLinear& w) {
  return reinterpret_cast<uintptr_t>(w.weight) % 16 == 0 && (w.in * elem_bytes(w.elem)) % 16 == 0;
}

/// Whether activation rows starting at `x`, `ld` floats apart, can be read as float4 (alignment only; the
/// caller also requires whole vectors, i.e. rows_vectorizable of the weight).
__host__ __device__ inline bool x_vectorizable(const float* x, int64_t ld) {
  return reinterpret_cast<uintptr_t>(x) % 16 == 0 && ld % 4 == 0;
}

// --- loads -------------------------------------------------------------------------------------------------

/// 16 bytes of weights: read-only, streamed (no L1 allocation, so activations keep L1).
__device__ __forceinline__ uint4 load_stream16(const void* p) {
  uint4 r;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
      : "l"(p));
  return r;
}

__device__ __forceinline__ uint32_t& word(uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}
__device__ __forceinline__ uint32_t word(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

/// Vector v of a weight row: elements [v * V, v * V + V) as raw bytes, zero past `in`. `vec`: the row is
/// 16-byte aligned and holds whole vectors (then v is always a full vector).
template <Elem E>
__device__ __forceinline__ uint4 load_w(const uint8_t* row /*[in] E*/, int v, int in, bool vec) {
  constexpr int B = kElemBytes<E>, V = kVec<E>;
  if (vec) return load_stream16(row + static_cast<int64_t>(v) * 16);
  uint4 r = make_uint4(0, 0, 0, 0);
  const int k0 = v * V;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    if (k0 + j < in) {
      const uint8_t* p = row + static_cast<int64_t>(k0 + j) * B;
      uint32_t bits;
      if constexpr (B == 4)
        bits = __ldg(reinterpret_cast<const unsigned int*>(p));
      else if constexpr (B == 2)
        bits = __ldg(reinterpret_cast<const unsigned short*>(p));
      else
        bits = __ldg(reinterpret_cast<const unsigned char*>(p));
      word(r, j * B / 4) |= bits << (8 * (j * B % 4));
    }
  }
  return r;
}

/// x[k, k + 4) of one activation row, zero past `in`. `vec`: float4-aligned and k + 4 <= in.
__device__ __forceinline__ float4 load_x4(const float* x /*[in]*/, int k, int in, bool vec) {
  if (vec) return __ldg(reinterpret_cast<const float4*>(x + k));
  float4 r;
  r.x = k + 0 < in ? __ldg(x + k + 0) : 0.0f;
  r.y = k + 1 < in ? __ldg(x + k + 1) : 0.0f;
  r.z = k + 2 < in ? __ldg(x + k + 2) : 0.0f;
  r.w = k + 3 < in ? __ldg(x + k + 3) : 0.0f;
  return r;
}

// --- decoding ----------------------------------------------------------------------------------------------

/// Elements [4c, 4c + 4) of a raw 16-byte vector as f32 (exact).
template <Elem E>
__device__ __forceinline__ void decode4(const uint4& raw, int c, float (&w)[4]) {
  if constexpr (E == Elem::kF32) {
#pragma unroll
    for (int j = 0; j < 4; ++j) w[j] = __uint_as_float(word(raw, j));
  } else if constexpr (E == Elem::kBF16) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t u = word(raw, 2 * c + h);
      w[2 * h] = __uint_as_float(u << 16);
      w[2 * h + 1] = __uint_as_float(u & 0xffff0000u);
    }
  } else if constexpr (E == Elem::kF16) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t u = word(raw, 2 * c + h);
      __half2_raw hr;
      hr.x = static_cast<unsigned short>(u & 0xffffu);
      hr.y = static_cast<unsigned short>(u >> 16);
      const float2 f = __half22float2(__half2(hr));
      w[2 * h] = f.x;
      w[2 * h + 1] = f.y;
    }
  } else {
    const uint32_t u = word(raw, c);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const __half2_raw hr =
          __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(u >> (16 * h)), __NV_E4M3);
      const float2 f = __half22float2(__half2(hr));
      w[2 * h] = f.x;
      w[2 * h + 1] = f.y;
    }
  }
}

// --- the warp dot product ----------------------------------------------------------------------------------

/// R weight rows of one warp. Rows may come from different matrices of the same element type and `in`.
template <int R>
struct Rows {
  const uint8_t* w[R];     // each [in] elem: the row's first byte
  const float* bscale[R];  // kFp8Block: the scales of the row's out-block [scale_cols]; null otherwise
  int block_in[R];         // kFp8Block: input columns per scale
  int block_shift[R];      // log2(block_in) when that is a power of two >= 16 (a vector never straddles
                           // two scale blocks), else -1 (per-element scale lookup)
};

/// Row o of w into slot r of `rows` (o < w.out).
template <int R>
__device__ __forceinline__ void set_row(Rows<R>& rows, int r, const DeviceLinear& w, int64_t o) {
  rows.w[r] = static_cast<const uint8_t*>(w.weight) + o * w.in * elem_bytes(w.elem);
  const bool block = w.elem == Elem::kF8E4M3 && w.quant == Quant::kFp8Block;
  rows.bscale[r] = block ? w.scale + (o / w.block_out) * w.scale_cols : nullptr;
  rows.block_in[r] = block ? w.block_in : 1;
  const int bi = rows.block_in[r];
  rows.block_shift[r] = bi >= 16 && (bi & (bi - 1)) == 0 ? __ffs(bi) - 1 : -1;
}

/// Rows o0 .. o0 + R - 1 of w; rows past w.out repeat the last row (computed, never stored).
template <int R>
__device__ __forceinline__ Rows<R> rows_of(const DeviceLinear& w, int64_t o0) {
  Rows<R> rows;
#pragma unroll
  for (int r = 0; r < R; ++r) set_row(rows, r, w, o0 + r < w.out ? o0 + r : w.out - 1);
  return rows;
}

/// acc[r][t] += row r . x[t] over vector v (elements [v * V, v * V + V), zero past `in`).
template <Elem E, int R, int G>
__device__ __forceinline__ void accumulate_vector(const Rows<R>& rows, const uint4 (&raw)[R], int v,
                                                  const float* const (&x)[G], int in, bool x_vec,
                                                  float (&acc)[R][G]) {
  constexpr int V = kVec<E>;
  const int k0 = v * V;
  float s[R];  // kFp8Block scale of the whole vector, when the vector lies in one scale block
  if constexpr (E == Elem::kF8E4M3) {
#pragma unroll
    for (int r = 0; r < R; ++r)
      s[r] = rows.bscale[r] && rows.block_shift[r] >= 0 ? rows.bscale[r][k0 >> rows.block_shift[r]] : 1.0f;
  }
#pragma unroll
  for (int c = 0; c < V / 4; ++c) {
    float w[R][4];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      decode4<E>(raw[r], c, w[r]);
      if constexpr (E == Elem::kF8E4M3) {
        if (rows.bscale[r]) {
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int k = k0 + 4 * c + j;
            const float sj =
                rows.block_shift[r] >= 0 ? s[r] : k < in ? rows.bscale[r][k / rows.block_in[r]] : 0.0f;
            w[r][j] = __fmul_rn(w[r][j], sj);
          }
        }
      }
    }
#pragma unroll
    for (int t = 0; t < G; ++t) {
      const float4 xv = load_x4(x[t], k0 + 4 * c, in, x_vec);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        acc[r][t] = fmaf(w[r][0], xv.x, acc[r][t]);
        acc[r][t] = fmaf(w[r][1], xv.y, acc[r][t]);
        acc[r][t] = fmaf(w[r][2], xv.z, acc[r][t]);
        acc[r][t] = fmaf(w[r][3], xv.w, acc[r][t]);
      }
    }
  }
}

/// The lane loop of warp_dot over vectors v = lane, lane + 32, ... < n_vec, U vectors per row in flight.
template <Elem E, int R, int G, int U, bool kVecLoads>
__device__ __forceinline__ void lane_loop(const Rows<R>& rows, const float* const (&x)[G], int in, bool x_vec,
                                          float (&acc)[R][G]) {
  const int n_vec = (in + kVec<E> - 1) / kVec<E>;
  for (int v0 = static_cast<int>(threadIdx.x % 32); v0 < n_vec; v0 += 32 * U) {
    uint4 raw[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int r = 0; r < R; ++r)
        raw[u][r] = v0 + 32 * u < n_vec ? load_w<E>(rows.w[r], v0 + 32 * u, in, kVecLoads)
                                        : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (v0 + 32 * u < n_vec) accumulate_vector<E, R, G>(rows, raw[u], v0 + 32 * u, x, in, x_vec, acc);
  }
}

/// acc[r][t] = dot(rows.w[r], x[t]) over `in` elements, in every lane of the calling warp (all 32 lanes
/// must call it together). No scale or bias: see finish(). w_vec: every row is 16-byte aligned and `in` a
/// multiple of V (rows_vectorizable); x_vec: additionally every x[t] is float4-aligned. Both only choose
/// how elements are loaded, never the arithmetic.
template <Elem E, int R, int G>
__device__ __forceinline__ void warp_dot(const Rows<R>& rows, const float* const (&x)[G] /*each [in] f32*/,
                                         int in, bool w_vec, bool x_vec, float (&acc)[R][G]) {
  constexpr int U = kBytesInFlight / (512 * R) > 0 ? kBytesInFlight / (512 * R) : 1;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < G; ++t) acc[r][t] = 0.0f;
  if (w_vec)
    lane_loop<E, R, G, U, true>(rows, x, in, x_vec, acc);
  else  // rows not 16-byte aligned: element loads, one vector at a time (rare shapes)
    lane_loop<E, R, G, 1, false>(rows, x, in, false, acc);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < G; ++t)
#pragma unroll
      for (int off = 16; off > 0; off /= 2)
        acc[r][t] = __fadd_rn(acc[r][t], __shfl_xor_sync(0xffffffffu, acc[r][t], off));
}

/// What turns row o's dot product into its output: y = dot * scale + bias, scale being the fp8 per-tensor /
/// per-channel scale (1 otherwise) and bias -0.0 when there is none (x * 1 == x and x + -0.0 == x for every
/// x, so an absent scale or bias leaves the value untouched, as on the CPU). Loaded before the dot product.
struct Epilogue {
  float scale = 1.0f;
  float bias = -0.0f;
};

__device__ __forceinline__ Epilogue epilogue(const DeviceLinear& w, int64_t o) {
  Epilogue e;
  if (w.elem == Elem::kF8E4M3 && w.quant == Quant::kFp8Tensor) e.scale = w.scale[0];
  if (w.elem == Elem::kF8E4M3 && w.quant == Quant::kFp8Channel) e.scale = w.scale[o];
  if (w.bias) e.bias = w.bias[o];
  return e;
}

__device__ __forceinline__ float finish(const Epilogue& e, float dot) {
  return __fadd_rn(__fmul_rn(dot, e.scale), e.bias);
}

/// acc[i / G][i % G] for i = the calling lane (< R * G); the lane picks its own result to store.
template <int R, int G>
__device__ __forceinline__ float pick(const float (&acc)[R][G], int i) {
  float v = 0.0f;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < G; ++t)
      if (r * G + t == i) v = acc[r][t];
  return v;
}

/// silu(g) * u as the CPU computes it: g / (1 + exp(-g)) * u.
__device__ __forceinline__ float silu_mul(float g, float u) {
  return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), u);
}

/// Calls f(std::integral_constant<int, G>) for the smallest G in {1, 2, 4, 8} that holds n rows (G <= GMAX).
template <int GMAX, class F>
__device__ __forceinline__ void with_group(int n, F&& f) {
  if constexpr (GMAX >= 8)
    if (n > 4) return f(std::integral_constant<int, 8>{});
  if constexpr (GMAX >= 4)
    if (n > 2) return f(std::integral_constant<int, 4>{});
  if constexpr (GMAX >= 2)
    if (n > 1) return f(std::integral_constant<int, 2>{});
  f(std::integral_constant<int, 1>{});
}

}  // namespace tandem::ops::cuda::gemv
