// The register-blocked linear kernel, written once over an ISA traits type V and instantiated by
// linear_scalar.cpp, linear_avx2.cpp and linear_avx512.cpp (each compiled with its own -m flags). Include it
// only from those files: its instantiations take V's internal linkage, so the per-ISA copies never merge.
//
// Loop nest for output rows [r0, r1) and tokens [t0, t1):
//   panel of rows  ->  input chunk of kLinearChunk  ->  token tile (TT tokens)  ->  row tile (R rows)
//     micro-kernel: R x TT vector accumulators over the chunk, one weight load per row shared by TT tokens.
// Every weight byte is loaded from memory once per call: within a panel the weight chunk stays in L1/L2
// while all token tiles pass over it. With few tokens a panel is a single row tile, so each thread reads
// R weight rows front to back (few hardware prefetch streams); with many tokens the panel is wider so each
// x chunk is reused across many rows before it leaves cache.
//
// V provides: Reg, kLanes, kRowTile (R), kTokTile (TT), kF8Unit, zero(), set1(), fma(a, b, c) = a*b + c,
// mul(), hsum(), load_x(p), load_x_tail(p, n), load_w<DType>(row, i), load_w_tail<DType>(row, i, n).
// load_w<kF8E4M3> returns the e4m3 value times 1/kF8Unit (the AVX kernels go through f16 and fold the
// exponent rebias into the per-row scale multiplier).
#pragma once

#include <algorithm>
#include <cstdint>

#include "ops/cpu/dispatch.h"

namespace tandem::ops::cpu::linear_tile {

inline constexpr int64_t kPanelRows = 64;

template <DType WT>
constexpr int64_t weight_bytes() {
  if constexpr (WT == DType::kF32) return 4;
  else if constexpr (WT == DType::kF8E4M3) return 1;
  else return 2;
}

/// fp8 dequantisation scale of weight element (o, i); constant over one block_in segment of a row.
inline float fp8_scale(const LinearProblem& p, int64_t o, int64_t i) {
  switch (p.quant) {
    case WeightQuant::kFp8Tensor: return p.scale[0];
    case WeightQuant::kFp8Channel: return p.scale[o];
    case WeightQuant::kFp8Block: return p.scale[(o / p.block_out) * p.scale_cols + i / p.block_in];
    case WeightQuant::kNone: break;
  }
  return 1.0f;
}

/// sums[t * R + r] = dot(x row t, W row o0 + r) over input columns [c0, c1).
template <class V, DType WT, int R, int TT>
void micro(const LinearProblem& p, const float* const* xr, int64_t o0, int64_t c0, int64_t c1, float* sums) {
  using Reg = typename V::Reg;
  constexpr int L = V::kLanes;
  const char* wr[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    wr[r] = static_cast<const char*>(p.w) + (o0 + r) * p.in * weight_bytes<WT>();
  Reg acc[R][TT];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < TT; ++t) acc[r][t] = V::zero();

  int64_t i = c0;
  while (i < c1) {
    int64_t seg_end = c1;
    [[maybe_unused]] Reg mult[R];
    if constexpr (WT == DType::kF8E4M3) {
      if (p.quant == WeightQuant::kFp8Block) seg_end = std::min(c1, (i / p.block_in + 1) * p.block_in);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) mult[r] = V::set1(fp8_scale(p, o0 + r, i) * V::kF8Unit);
    }
    for (; i + L <= seg_end; i += L) {
      Reg xv[TT];
#pragma GCC unroll 16
      for (int t = 0; t < TT; ++t) xv[t] = V::load_x(xr[t] + i);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        Reg w = V::template load_w<WT>(wr[r], i);
        if constexpr (WT == DType::kF8E4M3) w = V::mul(w, mult[r]);
#pragma GCC unroll 16
        for (int t = 0; t < TT; ++t) acc[r][t] = V::fma(w, xv[t], acc[r][t]);
      }
    }
    if (i < seg_end) {
      const int n = static_cast<int>(seg_end - i);
      Reg xv[TT];
#pragma GCC unroll 16
      for (int t = 0; t < TT; ++t) xv[t] = V::load_x_tail(xr[t] + i, n);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        Reg w = V::template load_w_tail<WT>(wr[r], i, n);
        if constexpr (WT == DType::kF8E4M3) w = V::mul(w, mult[r]);
#pragma GCC unroll 16
        for (int t = 0; t < TT; ++t) acc[r][t] = V::fma(w, xv[t], acc[r][t]);
      }
      i = seg_end;
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < TT; ++t) sums[t * R + r] = V::hsum(acc[r][t]);
}

template <class V, DType WT, int R>
void micro_tokens(int tt, const LinearProblem& p, const float* const* xr, int64_t o0, int64_t c0, int64_t c1,
                  float* sums) {
  static_assert(V::kTokTile <= 4, "token tiles above 4 need more cases here");
  switch (tt) {
    case 1: micro<V, WT, R, 1>(p, xr, o0, c0, c1, sums); break;
    case 2: if constexpr (V::kTokTile >= 2) micro<V, WT, R, 2>(p, xr, o0, c0, c1, sums); break;
    case 3: if constexpr (V::kTokTile >= 3) micro<V, WT, R, 3>(p, xr, o0, c0, c1, sums); break;
    default: if constexpr (V::kTokTile >= 4) micro<V, WT, R, 4>(p, xr, o0, c0, c1, sums); break;
  }
}

template <class V, DType WT>
void rows(const LinearProblem& p, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  constexpr int R = V::kRowTile, TT = V::kTokTile;
  const int64_t panel = (t1 - t0) <= TT ? R : kPanelRows;
  float sums[TT * R];
  const float* xr[TT];
  for (int64_t pb = r0; pb < r1; pb += panel) {
    const int64_t pe = std::min(r1, pb + panel);
    for (int64_t c0 = 0; c0 < p.in; c0 += kLinearChunk) {
      const int64_t c1 = std::min(p.in, c0 + kLinearChunk);
      for (int64_t t = t0; t < t1; t += TT) {
        const int tt = static_cast<int>(std::min<int64_t>(TT, t1 - t));
        for (int j = 0; j < tt; ++j) {
          const int64_t row = p.x_rows ? p.x_rows[t + j] : t + j;
          xr[j] = p.x + row * p.x_ld;
        }
        for (int64_t o = pb; o < pe;) {
          const int nr = pe - o >= R ? R : 1;
          if (nr == R) micro_tokens<V, WT, R>(tt, p, xr, o, c0, c1, sums);
          else micro_tokens<V, WT, 1>(tt, p, xr, o, c0, c1, sums);
          for (int j = 0; j < tt; ++j) {
            float* y = p.y + (t + j) * p.y_ld + (o - p.y_col0);
            for (int r = 0; r < nr; ++r) y[r] = c0 == 0 ? sums[j * nr + r] : y[r] + sums[j * nr + r];
          }
          o += nr;
        }
      }
    }
    if (p.bias)
      for (int64_t t = t0; t < t1; ++t) {
        float* y = p.y + t * p.y_ld - p.y_col0;
        for (int64_t o = pb; o < pe; ++o) y[o] += p.bias[o];
      }
  }
}

/// The LinearRowsFn of ISA V.
template <class V>
void linear_rows(const LinearProblem& p, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  switch (p.w_dtype) {
    case DType::kF32: rows<V, DType::kF32>(p, r0, r1, t0, t1); return;
    case DType::kBF16: rows<V, DType::kBF16>(p, r0, r1, t0, t1); return;
    case DType::kF16: rows<V, DType::kF16>(p, r0, r1, t0, t1); return;
    case DType::kF8E4M3: rows<V, DType::kF8E4M3>(p, r0, r1, t0, t1); return;
    default: break;  // rejected by the caller's validation
  }
}

}  // namespace tandem::ops::cpu::linear_tile
