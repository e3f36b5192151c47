// The register-blocked linear kernel, written once over an ISA traits type V and instantiated by
// linear_scalar.cpp, linear_avx2.cpp and linear_avx512.cpp (each compiled with its own -m flags). Include it
// only from those files: its instantiations take V's internal linkage, so the per-ISA copies never merge.
//
// Loop nest for output rows [r0, r1) and tokens [t0, t1):
//   panel of rows  ->  input chunk of kLinearChunk  ->  token tile (TT tokens)  ->  row tile (R rows)
//     micro-kernel: R x TT vector accumulators over the chunk, one weight load per row shared by TT tokens.
// Every weight byte is loaded from memory once per token group (all tokens unless x is very large): within a
// panel the weight chunk stays in L1/L2 while all token tiles pass over it. With few tokens a panel is a
// single row tile, so each thread reads R weight rows front to back (few hardware prefetch streams); with
// many tokens the panel is wider so each x chunk is reused across many rows before it leaves cache.
//
// Paired bf16 (V::kPairedBf16): one 2L-element load of bf16 weights becomes two f32 registers without any
// lane shuffle: shifting each 32-bit pair left by 16 gives the even elements, masking off the low half the
// odd ones. x is staged once per call in the matching order (per 2L block: its L even elements, then its L
// odd ones, zero-padded to whole blocks), so a lane accumulates elements 2l and 2l+1 of every block. This
// halves the conversion work per weight byte, which at batch 1 is what keeps a core from streaming weights
// at memory speed.
//
// V provides: Reg, kLanes, kRowTile (R for token tiles of up to 2 tokens), kRowTileWide (R for wider tiles),
// kTokTile (TT), kPairedBf16, kF8Unit, zero(), fma(a, b, c) = a*b + c, hsum(), load_x(p), load_x_tail(p, n),
// load_w<DType>(row, i), load_w_tail<DType>(row, i, n), and when kPairedBf16: load_bf16_pair(row, i, even,
// odd) over elements [i, i + 2L), load_bf16_pair_tail(row, i, n, even, odd), and split_pairs(x, d), which
// writes x's 2L floats as d[0, L) = even elements, d[L, 2L) = odd ones. load_w<kF8E4M3> returns
// the e4m3 value times 1/kF8Unit (the AVX kernels go through f16, whose exponent bias differs by 8). No fp8
// scale is applied per weight element: per-tensor/channel scales (times kF8Unit) multiply the finished row
// sums; block scales multiply x once per out-block (scale_x_for_block), and panels never straddle an
// out-block.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/cpu/dispatch.h"

namespace tandem::ops::cpu::linear_tile {

inline constexpr int64_t kPanelRows = 64;
// How far ahead of the current load each weight row is prefetched. Hardware prefetchers alone leave DRAM
// bandwidth unused once the FMAs of a multi-token tile fill the out-of-order window.
inline constexpr int64_t kPrefetchBytes = 1024;
// Paired bf16 prefetches this far ahead per token of the tile: an iteration's time grows with the tokens
// it serves, so the distance in bytes does too, to stay a DRAM latency ahead.
inline constexpr int64_t kPairedPrefetchBytesPerToken = 512;
// Staged x (paired bf16 order or fp8 block-scaled) is bounded to this many floats per thread; more tokens
// are processed in groups, each streaming the weights again (only prefill-sized calls ever group).
inline constexpr int64_t kMaxStagedFloats = int64_t{1} << 20;

/// True when weights of dtype WT go through V's paired bf16 loads (x staged in paired order).
template <class V, DType WT>
constexpr bool paired() {
  return WT == DType::kBF16 && V::kPairedBf16;
}

template <DType WT>
constexpr int64_t weight_bytes() {
  if constexpr (WT == DType::kF32)
    return 4;
  else if constexpr (WT == DType::kF8E4M3)
    return 1;
  else
    return 2;
}

/// Per-tensor / per-channel fp8 scale of output row o, applied to the finished row sums.
inline float row_scale(const LinearProblem& p, int64_t o) {
  return p.quant == WeightQuant::kFp8Channel ? p.scale[o] : p.scale[0];
}

/// Offset from a row's start to prefetch for `ahead` bytes into it. When a thread streams its rows one tile
/// after another (wrap_at = the row's bytes), past the row's end it moves on to the same row of the next
/// R-row tile (a tile's rows are contiguous), so short rows keep a DRAM latency of lead across tiles instead
/// of starting each cold; the last tile of a range prefetches a little it won't read. Panels of many rows
/// revisit their tiles once per token tile and pass wrap_at = INT64_MAX (no wrap: that costs prefill ~25%).
template <int R>
int64_t next_tile_offset(int64_t ahead, int64_t wrap_at, int64_t row_bytes) {
  return ahead < wrap_at ? ahead : ahead + (R - 1) * row_bytes;
}

/// sums[t * R + r] = dot(x row t, W row o0 + r) over input columns [c0, c1).
template <class V, DType WT, int R, int TT>
void micro(const LinearProblem& p, const float* const* xr, int64_t o0, int64_t c0, int64_t c1, int64_t wrap_at,
           float* sums) {
  using Reg = typename V::Reg;
  constexpr int L = V::kLanes;
  constexpr int64_t kBytes = weight_bytes<WT>();
  const int64_t row_bytes = p.in * kBytes;
  const char* wr[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) wr[r] = static_cast<const char*>(p.w) + (o0 + r) * row_bytes;
  Reg acc[R][TT];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < TT; ++t) acc[r][t] = V::zero();

  int64_t i = c0;
  if constexpr (paired<V, WT>()) {
    // x rows are staged in paired order and zero-padded to whole 2L blocks, so even the tail loads whole
    // x registers; the weight tail is a masked (zero-filled) load.
    for (; i + 2 * L <= c1; i += 2 * L) {
      const int64_t pf = next_tile_offset<R>(i * kBytes + kPairedPrefetchBytesPerToken * TT, wrap_at, row_bytes);
      Reg xe[TT], xo[TT];
#pragma GCC unroll 16
      for (int t = 0; t < TT; ++t) {
        xe[t] = V::load_x(xr[t] + i);
        xo[t] = V::load_x(xr[t] + i + L);
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        __builtin_prefetch(wr[r] + pf);
        Reg we, wo;
        V::load_bf16_pair(wr[r], i, we, wo);
#pragma GCC unroll 16
        for (int t = 0; t < TT; ++t) acc[r][t] = V::fma(wo, xo[t], V::fma(we, xe[t], acc[r][t]));
      }
    }
    if (i < c1) {
      const int n = static_cast<int>(c1 - i);
      Reg xe[TT], xo[TT];
#pragma GCC unroll 16
      for (int t = 0; t < TT; ++t) {
        xe[t] = V::load_x(xr[t] + i);
        xo[t] = V::load_x(xr[t] + i + L);
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        Reg we, wo;
        V::load_bf16_pair_tail(wr[r], i, n, we, wo);
#pragma GCC unroll 16
        for (int t = 0; t < TT; ++t) acc[r][t] = V::fma(wo, xo[t], V::fma(we, xe[t], acc[r][t]));
      }
    }
  } else {
    for (; i + L <= c1; i += L) {
      Reg xv[TT];
#pragma GCC unroll 16
      for (int t = 0; t < TT; ++t) xv[t] = V::load_x(xr[t] + i);
      // One prefetch per 64-byte line of each row (an iteration reads L * kBytes bytes of it).
      const bool prefetch = L * kBytes >= 64 || ((i * kBytes) & 63) < L * kBytes;
      const int64_t pf = next_tile_offset<R>(i * kBytes + kPrefetchBytes, wrap_at, row_bytes);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        if (prefetch) __builtin_prefetch(wr[r] + pf);
        const Reg w = V::template load_w<WT>(wr[r], i);
#pragma GCC unroll 16
        for (int t = 0; t < TT; ++t) acc[r][t] = V::fma(w, xv[t], acc[r][t]);
      }
    }
    if (i < c1) {
      const int n = static_cast<int>(c1 - i);
      Reg xv[TT];
#pragma GCC unroll 16
      for (int t = 0; t < TT; ++t) xv[t] = V::load_x_tail(xr[t] + i, n);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const Reg w = V::template load_w_tail<WT>(wr[r], i, n);
#pragma GCC unroll 16
        for (int t = 0; t < TT; ++t) acc[r][t] = V::fma(w, xv[t], acc[r][t]);
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < TT; ++t) sums[t * R + r] = V::hsum(acc[r][t]);
}

template <class V, DType WT, int R>
void micro_tokens(int tt, const LinearProblem& p, const float* const* xr, int64_t o0, int64_t c0, int64_t c1,
                  int64_t wrap_at, float* sums) {
  static_assert(V::kTokTile <= 4, "token tiles above 4 need more cases here");
  switch (tt) {
    case 1:
      micro<V, WT, R, 1>(p, xr, o0, c0, c1, wrap_at, sums);
      break;
    case 2:
      if constexpr (V::kTokTile >= 2) micro<V, WT, R, 2>(p, xr, o0, c0, c1, wrap_at, sums);
      break;
    case 3:
      if constexpr (V::kTokTile >= 3 && R <= V::kRowTileWide) micro<V, WT, R, 3>(p, xr, o0, c0, c1, wrap_at, sums);
      break;
    default:
      if constexpr (V::kTokTile >= 4 && R <= V::kRowTileWide) micro<V, WT, R, 4>(p, xr, o0, c0, c1, wrap_at, sums);
      break;
  }
}

/// Rows of the micro-kernel tile for a token tile of tt tokens.
template <class V>
constexpr int row_tile(int tt) {
  return tt <= 2 ? V::kRowTile : V::kRowTileWide;
}

/// sums for nr rows from o0 (nr is row_tile(tt), or 1 for the rows left over at the end of a range).
template <class V, DType WT>
void micro_rows(int nr, int tt, const LinearProblem& p, const float* const* xr, int64_t o0, int64_t c0,
                int64_t c1, int64_t wrap_at, float* sums) {
  if (nr == V::kRowTile)
    micro_tokens<V, WT, V::kRowTile>(tt, p, xr, o0, c0, c1, wrap_at, sums);
  else if (nr == V::kRowTileWide)
    micro_tokens<V, WT, V::kRowTileWide>(tt, p, xr, o0, c0, c1, wrap_at, sums);
  else
    micro_tokens<V, WT, 1>(tt, p, xr, o0, c0, c1, wrap_at, sums);
}

/// Floats of one staged x row in paired order: `in` rounded up to whole 2L blocks.
template <class V>
int64_t paired_row_floats(int64_t in) {
  constexpr int64_t B = 2 * V::kLanes;
  return (in + B - 1) / B * B;
}

/// x rows of tokens [t0, t1) in paired order (see the file comment), zero-padded.
template <class V>
void stage_x_paired(const LinearProblem& p, int64_t t0, int64_t t1, std::vector<float>& xs) {
  constexpr int64_t L = V::kLanes;
  const int64_t ld = paired_row_floats<V>(p.in);
  const int64_t full = p.in / (2 * L) * (2 * L);  // elements in whole blocks
  xs.resize(static_cast<size_t>((t1 - t0) * ld));
  for (int64_t t = t0; t < t1; ++t) {
    const float* x = p.x + (p.x_rows ? p.x_rows[t] : t) * p.x_ld;
    float* d = xs.data() + (t - t0) * ld;
    for (int64_t b = 0; b < full; b += 2 * L) V::split_pairs(x + b, d + b);
    if (full < ld)
      for (int64_t l = 0; l < L; ++l) {
        const int64_t e = full + 2 * l;
        d[full + l] = e < p.in ? x[e] : 0.0f;
        d[full + L + l] = e + 1 < p.in ? x[e + 1] : 0.0f;
      }
  }
}

/// fp8 block quantisation: x[t, i] * scale(out_block, i / block_in) * kF8Unit for tokens [t0, t1), so the
/// micro-kernel needs no multiply. Rebuilt when a panel enters a new out-block (every block_out rows).
template <class V>
void scale_x_for_block(const LinearProblem& p, int64_t out_block, int64_t t0, int64_t t1,
                       std::vector<float>& xs) {
  xs.resize(static_cast<size_t>((t1 - t0) * p.in));
  const float* s = p.scale + out_block * p.scale_cols;
  for (int64_t t = t0; t < t1; ++t) {
    const float* x = p.x + (p.x_rows ? p.x_rows[t] : t) * p.x_ld;
    float* d = xs.data() + (t - t0) * p.in;
    for (int64_t i0 = 0; i0 < p.in; i0 += p.block_in) {
      const float si = s[i0 / p.block_in] * V::kF8Unit;
      const int64_t i1 = std::min(p.in, i0 + p.block_in);
      for (int64_t i = i0; i < i1; ++i) d[i] = x[i] * si;
    }
  }
}

/// Rows [r0, r1) for tokens [t0, t1), whose staged x (if any) fits in kMaxStagedFloats.
template <class V, DType WT>
void rows_group(const LinearProblem& p, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  constexpr int TT = V::kTokTile;
  const bool streaming = (t1 - t0) <= TT;  // a panel is one row tile: rows are read once, tile after tile
  const int64_t panel = streaming ? row_tile<V>(static_cast<int>(t1 - t0)) : kPanelRows;
  const int64_t wrap_at = streaming ? p.in * weight_bytes<WT>() : INT64_MAX;
  const bool block = WT == DType::kF8E4M3 && p.quant == WeightQuant::kFp8Block;
  const bool per_row_scale = WT == DType::kF8E4M3 && !block;
  thread_local std::vector<float> xs;  // [t1 - t0, xs_ld] x staged in paired order or block-scaled
  int64_t xs_ld = 0;
  if constexpr (paired<V, WT>()) {
    stage_x_paired<V>(p, t0, t1, xs);
    xs_ld = paired_row_floats<V>(p.in);
  }
  if (block) xs_ld = p.in;
  int64_t xs_block = -1;
  float sums[TT * V::kRowTile];
  const float* xr[TT];
  for (int64_t pb = r0, pe; pb < r1; pb = pe) {
    pe = std::min(r1, pb + panel);
    if (block) {  // a panel stays inside one out-block, whose scales are folded into x
      pe = std::min(pe, (pb / p.block_out + 1) * p.block_out);
      if (pb / p.block_out != xs_block) {
        xs_block = pb / p.block_out;
        scale_x_for_block<V>(p, xs_block, t0, t1, xs);
      }
    }
    for (int64_t c0 = 0; c0 < p.in; c0 += kLinearChunk) {
      const int64_t c1 = std::min(p.in, c0 + kLinearChunk);
      for (int64_t t = t0; t < t1; t += TT) {
        const int tt = static_cast<int>(std::min<int64_t>(TT, t1 - t));
        const int R = row_tile<V>(tt);
        for (int j = 0; j < tt; ++j)
          xr[j] = xs_ld ? xs.data() + (t + j - t0) * xs_ld : p.x + (p.x_rows ? p.x_rows[t + j] : t + j) * p.x_ld;
        for (int64_t o = pb; o < pe;) {
          const int nr = pe - o >= R ? R : 1;
          micro_rows<V, WT>(nr, tt, p, xr, o, c0, c1, wrap_at, sums);
          for (int j = 0; j < tt; ++j) {
            float* y = p.y + (t + j) * p.y_ld + (o - p.y_col0);
            for (int r = 0; r < nr; ++r) y[r] = c0 == 0 ? sums[j * nr + r] : y[r] + sums[j * nr + r];
          }
          o += nr;
        }
      }
    }
    if (per_row_scale)
      for (int64_t t = t0; t < t1; ++t) {
        float* y = p.y + t * p.y_ld;
        for (int64_t o = pb; o < pe; ++o) y[o - p.y_col0] *= row_scale(p, o) * V::kF8Unit;
      }
    if (p.bias)
      for (int64_t t = t0; t < t1; ++t) {
        float* y = p.y + t * p.y_ld;
        for (int64_t o = pb; o < pe; ++o) y[o - p.y_col0] += p.bias[o];
      }
  }
}

template <class V, DType WT>
void rows(const LinearProblem& p, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  const bool staged = paired<V, WT>() || (WT == DType::kF8E4M3 && p.quant == WeightQuant::kFp8Block);
  const int64_t group = staged ? std::max<int64_t>(V::kTokTile, kMaxStagedFloats / (p.in + 2 * V::kLanes)) : t1 - t0;
  for (int64_t g0 = t0; g0 < t1; g0 += group) rows_group<V, WT>(p, r0, r1, g0, std::min(t1, g0 + group));
}

/// The LinearRowsFn of ISA V.
template <class V>
void linear_rows(const LinearProblem& p, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  switch (p.w_dtype) {
    case DType::kF32:
      rows<V, DType::kF32>(p, r0, r1, t0, t1);
      return;
    case DType::kBF16:
      rows<V, DType::kBF16>(p, r0, r1, t0, t1);
      return;
    case DType::kF16:
      rows<V, DType::kF16>(p, r0, r1, t0, t1);
      return;
    case DType::kF8E4M3:
      rows<V, DType::kF8E4M3>(p, r0, r1, t0, t1);
      return;
    default:
      break;  // rejected by the caller's validation
  }
}

}  // namespace tandem::ops::cpu::linear_tile
