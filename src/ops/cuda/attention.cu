// Paged KV store and causal GQA attention (ops::Backend::kv_store / attention) on CUDA.
//
// kv_store: one block per token row; each thread converts single elements of that row's k and v on their own
// (f32 copied; bf16 round-to-nearest-even; fp8 x / scale[g] then saturating round-to-nearest-even to e4m3,
// bit for bit the CPU's f32_to_bf16 / kv_f32_to_f8e4m3), so a stored element depends on that token only.
//
// attention: flash-decoding. A block takes one token row t and a run of up to 8 q heads of one kv head g
// (Hq / Hkv heads split into equal runs), so every K/V element it loads serves all heads of the run. The row's
// context [0, n_ctx) is cut into fixed chunks of kChunk positions, each chunk into tiles of kTile positions:
// per tile, K and V rows are loaded coalesced (a head's D elements are contiguous) and widened to f32 in
// shared memory; lane p of a warp scores position p for one head (a D-long dot product in order), the warp
// updates that head's running max / sum, and each thread then accumulates the output dims it owns over the
// tile's positions in order. A chunk starts from an empty softmax state; chunk states are then merged in
// chunk order 0, 1, 2, ... with one fixed formula (merge_weights / merge below) and normalised once.
//
// Batch invariance: every operation above, and its order, is fixed by D, the head's position in its run and
// n_ctx (the row's position + 1); nothing depends on T, the other rows or sequences, or the grid. Split-KV is
// the same computation: when the batch has few blocks (small T) the chunks of a row run in separate blocks
// that write their states to `scratch`, and a combine kernel merges them in the same order with the same
// formula, so splitting or not (a host decision from T, for speed only) gives the same bits. All arithmetic
// on the reduction path uses explicit round-to-nearest intrinsics (__fmaf_rn, __fmul_rn, ...) so that no
// FMA contraction differs between the two code paths.
//
// Reads cache elements exactly (bf16 and e4m3 widen exactly) and, like the CPU, applies an fp8 head's scales
// outside the loops: k_scale into the score scale, v_scale into the final 1 / sum. Only blocks covering
// positions < n_ctx are looked up, so the -1 padding of the block tables is never followed.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "ops/cuda/kernels.h"

namespace tandem::ops::cuda {
namespace {

constexpr int kThreads = 128;             // threads per block (all kernels here)
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 32;                 // context positions per tile: one per lane when scoring
constexpr int kChunk = 512;               // context positions per chunk: the unit of the fixed merge order
constexpr int kMaxHeadDim = 256;
constexpr int kDimsPerThread = kMaxHeadDim / kThreads;  // output dims a thread owns: d = tid + j * kThreads
constexpr int kMaxHeadsPerBlock = 8;      // q heads sharing one K/V tile
constexpr int kSeqInfoCols = 3;           // ops::kSeqInfoCols: token_begin, n_tokens, start_pos
// Split-KV (a speed choice only; the bits are the same either way) when the unsplit grid would have fewer
// blocks than this (a few per SM of an H100) and the partials fit in kMaxScratchBytes.
constexpr int64_t kSplitBelowBlocks = 1024;
constexpr size_t kMaxScratchBytes = size_t{64} << 20;
constexpr size_t kDefaultSharedBytes = 48 * 1024;  // more dynamic shared memory needs an opt-in

// --- rows and sequences ------------------------------------------------------------------------------------

/// Where token row t sits: its sequence s and context length n_ctx (its cache position + 1, as the CPU
/// computes it: start_pos + (t - token_begin) + 1). s = -1 when no sequence holds the row or its position lies
/// beyond the block tables. Called by the whole block (contains __syncthreads).
struct RowSeq {
  int64_t s;
  int64_t n_ctx;
};

__device__ RowSeq find_row_seq(const DeviceStep& step, int64_t block_size, int64_t t) {
  __shared__ int64_t found[2];
  if (threadIdx.x == 0) found[0] = -1, found[1] = 0;
  __syncthreads();
  for (int64_t s = threadIdx.x; s < step.n_seqs; s += blockDim.x) {
    const int32_t* info = step.seq_info + s * kSeqInfoCols;  // [3]
    if (t >= info[0] && t < int64_t{info[0]} + info[1]) {
      const int64_t n_ctx = int64_t{info[2]} + (t - info[0]) + 1;
      if (n_ctx <= step.max_blocks * block_size) found[0] = s, found[1] = n_ctx;
    }
  }
  __syncthreads();
  return {found[0], found[1]};
}

// --- element conversions -----------------------------------------------------------------------------------

/// What an invalid row or block reads as, so that a bad step shows as NaN instead of a wild read.
__device__ float quiet_nan() { return __int_as_float(0x7fc00000); }

/// f32 -> bf16 bits, round-to-nearest-even, NaN kept quiet with its sign (core/dtype.h f32_to_bf16).
__device__ uint16_t to_bf16(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

/// f32 -> e4m3 bits: NaN -> 0x7f, |f| >= 448 (inf included) -> +-448, else round-to-nearest-even
/// (ops/cpu/attention.cpp kv_f32_to_f8e4m3, step for step).
__device__ uint8_t to_f8e4m3(float f) {
  const uint32_t u = __float_as_uint(f);
  const uint32_t sign = (u >> 24) & 0x80u;
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return 0x7f;
  if (a >= 0x43e00000u) return static_cast<uint8_t>(sign | 0x7eu);
  if (a < 0x3c800000u) {  // subnormal: |f| * 512 (exact, < 8) rounded to an integer, ties to even
    const float q = __fsub_rn(__fadd_rn(__fmul_rn(__uint_as_float(a), 512.0f), 8388608.0f), 8388608.0f);
    return static_cast<uint8_t>(sign | static_cast<uint32_t>(q));
  }
  const uint32_t r = a + 0x7ffffu + ((a >> 20) & 1u);  // keep 3 mantissa bits, ties to even
  return static_cast<uint8_t>(sign | ((r >> 20) - (120u << 3)));
}

/// Storage type of a cache element.
template <Elem E> struct KvStorage;
template <> struct KvStorage<Elem::kF32> { using T = float; };
template <> struct KvStorage<Elem::kBF16> { using T = uint16_t; };
template <> struct KvStorage<Elem::kF8E4M3> { using T = uint8_t; };

/// Elements per 16-byte load.
template <Elem E>
constexpr int kVecElems = 16 / static_cast<int>(sizeof(typename KvStorage<E>::T));

/// Stores x as element i of a cache of kv head g (scales: [n_kv_heads], fp8 only).
template <Elem E>
__device__ void store_elem(void* cache, int64_t i, float x, const float* scales, int g) {
  if constexpr (E == Elem::kF32) {
    static_cast<float*>(cache)[i] = x;
  } else if constexpr (E == Elem::kBF16) {
    static_cast<uint16_t*>(cache)[i] = to_bf16(x);
  } else {
    static_cast<uint8_t*>(cache)[i] = to_f8e4m3(__fdiv_rn(x, scales[g]));
  }
}

/// Exact f32 value of one stored element.
template <Elem E>
__device__ float widen(typename KvStorage<E>::T x) {
  if constexpr (E == Elem::kF32) {
    return x;
  } else if constexpr (E == Elem::kBF16) {
    return __uint_as_float(uint32_t{x} << 16);
  } else {
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(x), __NV_E4M3);
    return __half2float(__ushort_as_half(h.x));
  }
}

/// Widens the 16 bytes in `raw` (kVecElems<E> elements, in memory order) into out[0 .. kVecElems<E>).
template <Elem E>
__device__ void widen_vec(const uint4& raw, float* out) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (E == Elem::kF32) {
      out[i] = __uint_as_float(w[i]);
    } else if constexpr (E == Elem::kBF16) {
      out[2 * i] = __uint_as_float(w[i] << 16);
      out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    } else {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(
            static_cast<__nv_fp8x2_storage_t>((w[i] >> (16 * half)) & 0xffffu), __NV_E4M3);
        const float2 f = __half22float2(__half2(h));
        out[4 * i + 2 * half] = f.x;
        out[4 * i + 2 * half + 1] = f.y;
      }
    }
  }
}

// --- kv_store ----------------------------------------------------------------------------------------------

/// Grid (T); block kThreads. k, v: [T, Hkv, D] f32.
template <Elem E>
__global__ void __launch_bounds__(kThreads) kv_store_kernel(const float* k, const float* v, DeviceKv kv,
                                                            DeviceStep step) {
  const int64_t t = blockIdx.x, bs = kv.block_size;
  const RowSeq rs = find_row_seq(step, bs, t);
  if (rs.s < 0) return;
  const int64_t pos = rs.n_ctx - 1;
  const int64_t phys = step.block_tables[rs.s * step.max_blocks + pos / bs];
  if (phys < 0 || phys >= kv.n_blocks) return;
  const int row = kv.n_kv_heads * kv.head_dim;  // elements per token per cache
  const int64_t dst = (phys * bs + pos % bs) * row;
  for (int i = threadIdx.x; i < row; i += kThreads) {
    const int g = i / kv.head_dim;
    store_elem<E>(kv.k, dst + i, k[t * row + i], kv.k_scale, g);
    store_elem<E>(kv.v, dst + i, v[t * row + i], kv.v_scale, g);
  }
}

// --- attention ---------------------------------------------------------------------------------------------

struct AttnParams {
  const float* q;   // [T, Hq, D]
  float* out;       // [T, Hq, D]
  float* partials;  // [T, Hq, max_chunks, 2 + D]: chunk (max, sum, unnormalised out); null unless split
  DeviceKv kv;
  DeviceStep step;
  float scale;
  int Hq;
  int group;    // q heads per kv head
  int n_runs;   // runs per kv head (blocks along y per kv head)
  int run_len;  // q heads per run (the last run may hold fewer)
  int64_t max_chunks;
  bool vec_loads;  // D is a multiple of kVecElems and the caches are 16-byte aligned
};

/// Weights that merge two softmax states with maxima ma, mb: m = max(ma, mb), wa = e^(ma - m), wb = e^(mb - m).
struct MergeWeights {
  float m, wa, wb;
};

__device__ MergeWeights merge_weights(float ma, float mb) {
  const float m = fmaxf(ma, mb);
  return {m, expf(__fsub_rn(ma, m)), expf(__fsub_rn(mb, m))};
}

/// a * wa + b * wb, rounded the same way everywhere (sums and output accumulators alike).
__device__ float merge(float a, float b, const MergeWeights& w) {
  return __fadd_rn(__fmul_rn(a, w.wa), __fmul_rn(b, w.wb));
}

/// The output element from a merged state: acc * (1 / sum * v_scale), as the CPU normalises.
__device__ float finish(float acc, float sum, float v_scale) {
  return __fmul_rn(acc, __fmul_rn(__fdiv_rn(1.0f, sum), v_scale));
}

/// Element offset of context position pos of kv head g in a cache, or -1 when the block table entry is not a
/// valid physical block. table: the row's sequence's [max_blocks] block table.
__device__ int64_t kv_offset(const DeviceKv& kv, const int32_t* table, int64_t pos, int g) {
  const uint32_t upos = static_cast<uint32_t>(pos), bs = kv.block_size;  // positions are i32: 32-bit division
  const uint32_t blk = upos / bs;
  const int64_t phys = table[blk];
  if (phys < 0 || phys >= kv.n_blocks) return -1;
  return ((phys * bs + (upos - blk * bs)) * kv.n_kv_heads + g) * kv.head_dim;
}

/// Vectorised tile loads, kFetch 16-byte vectors of K and of V per thread at a time ("a round"), so that the
/// next tile's first round is in flight while the current tile is computed. A tile [n, D] is read as vectors
/// i = (round * kFetch + slot) * kThreads + tid in row-major order (coalesced: a row's D elements are
/// contiguous). Needs D % kVecElems<E> == 0 and 16-byte aligned caches (AttnParams::vec_loads).
constexpr int kFetch = 4;

template <Elem E>
struct TileFetch {
  uint4 k[kFetch], v[kFetch];  // raw cache bits; an invalid block's row reads as NaN
};

template <Elem E>
__device__ int fetch_rounds(int n, int D) {
  return (n * (D / kVecElems<E>) + kFetch * kThreads - 1) / (kFetch * kThreads);
}

/// Tile row and column (element) of this thread's vectors in one round (the same for every tile).
struct RoundMap {
  int row[kFetch], col[kFetch];
};

template <Elem E>
__device__ RoundMap round_map(int D, int round) {
  const int per_row = D / kVecElems<E>;
  RoundMap m;
#pragma unroll
  for (int i = 0; i < kFetch; ++i) {
    const int idx = (round * kFetch + i) * kThreads + threadIdx.x;
    m.row[i] = idx / per_row;
    m.col[i] = (idx - m.row[i] * per_row) * kVecElems<E>;
  }
  return m;
}

/// Issues the loads of one round (map) of the tile at positions [p0, p0 + n).
template <Elem E>
__device__ void fetch_round(TileFetch<E>& f, const RoundMap& map, const DeviceKv& kv, const int32_t* table, int g,
                            int64_t p0, int n) {
  using T = typename KvStorage<E>::T;
  constexpr uint32_t kNaNBits = E == Elem::kF32 ? 0x7fc00000u : E == Elem::kBF16 ? 0x7fc07fc0u : 0x7f7f7f7fu;
#pragma unroll
  for (int i = 0; i < kFetch; ++i) {
    if (map.row[i] >= n) continue;
    const int64_t off = kv_offset(kv, table, p0 + map.row[i], g);
    const int64_t e = off + map.col[i];
    const uint4 nan4 = make_uint4(kNaNBits, kNaNBits, kNaNBits, kNaNBits);
    f.k[i] = off < 0 ? nan4 : __ldg(reinterpret_cast<const uint4*>(static_cast<const T*>(kv.k) + e));
    f.v[i] = off < 0 ? nan4 : __ldg(reinterpret_cast<const uint4*>(static_cast<const T*>(kv.v) + e));
  }
}

/// Widens one round (fetched with the same map and n) into ks [n, SK] and vs [n, D] (SK, D multiples of 4 here;
/// both 16-byte aligned).
template <Elem E>
__device__ void store_round(const TileFetch<E>& f, const RoundMap& map, int D, int n, float* ks, int SK,
                            float* vs) {
  constexpr int V = kVecElems<E>;
#pragma unroll
  for (int i = 0; i < kFetch; ++i) {
    const int r = map.row[i], c = map.col[i];
    if (r >= n) continue;
    float x[V];
    widen_vec<E>(f.k[i], x);
#pragma unroll
    for (int e = 0; e < V; e += 4)
      *reinterpret_cast<float4*>(ks + r * SK + c + e) = make_float4(x[e], x[e + 1], x[e + 2], x[e + 3]);
    widen_vec<E>(f.v[i], x);
#pragma unroll
    for (int e = 0; e < V; e += 4)
      *reinterpret_cast<float4*>(vs + r * D + c + e) = make_float4(x[e], x[e + 1], x[e + 2], x[e + 3]);
  }
}

/// The plain path for any D: loads the tile at positions [p0, p0 + n) element by element.
template <Elem E>
__device__ void load_tile_scalar(const DeviceKv& kv, const int32_t* table, int g, int64_t p0, int n, float* ks,
                                 int SK, float* vs) {
  using T = typename KvStorage<E>::T;
  const int D = kv.head_dim;
  for (int i = threadIdx.x; i < n * D; i += kThreads) {
    const int r = i / D, c = i - r * D;
    const int64_t off = kv_offset(kv, table, p0 + r, g);
    ks[r * SK + c] = off < 0 ? quiet_nan() : widen<E>(static_cast<const T*>(kv.k)[off + c]);
    vs[r * D + c] = off < 0 ? quiet_nan() : widen<E>(static_cast<const T*>(kv.v)[off + c]);
  }
}

/// Row stride (floats) of the K tile in shared memory. In the score loop lane r reads row r: for D % 4 == 0
/// as float4s, conflict-free when the stride is 4 (mod 8) floats; otherwise as floats, conflict-free when odd.
__host__ __device__ constexpr int k_stride(int D) { return D % 4 != 0 ? (D | 1) : D % 8 == 0 ? D + 4 : D; }

__device__ float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

/// Butterfly sum: a fixed order over the lanes, the same result in every lane.
__device__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = __fadd_rn(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

/// a[h] = a[h] * alpha[h], then += ps[h, r] * v[r * D] for the tile's positions r = 0 .. n-1 in order.
/// a: [HB] one output dim of each head; v: that dim of V row 0 in the tile ([n, D]); ps: [HB, kTile] (16-byte
/// aligned); alpha: [HB].
template <int HB>
__device__ __forceinline__ void accumulate_tile(float (&a)[HB], const float* v, int D, const float* ps,
                                                const float* alpha, int n) {
#pragma unroll
  for (int h = 0; h < HB; ++h) a[h] = __fmul_rn(a[h], alpha[h]);
  int r = 0;
  for (; r + 4 <= n; r += 4) {
    const float v0 = v[r * D], v1 = v[(r + 1) * D], v2 = v[(r + 2) * D], v3 = v[(r + 3) * D];
#pragma unroll
    for (int h = 0; h < HB; ++h) {
      const float4 pr = *reinterpret_cast<const float4*>(ps + h * kTile + r);
      a[h] = __fmaf_rn(pr.x, v0, a[h]);
      a[h] = __fmaf_rn(pr.y, v1, a[h]);
      a[h] = __fmaf_rn(pr.z, v2, a[h]);
      a[h] = __fmaf_rn(pr.w, v3, a[h]);
    }
  }
  for (; r < n; ++r) {
    const float vr = v[r * D];
#pragma unroll
    for (int h = 0; h < HB; ++h) a[h] = __fmaf_rn(ps[h * kTile + r], vr, a[h]);
  }
}

/// Grid (T, Hkv * n_runs, split ? max_chunks : 1); block kThreads; dynamic shared memory attn_smem_bytes.
/// HB >= run_len: heads of the run held in registers (unused ones carry zeros and are not written).
template <Elem E, int HB>
__global__ void __launch_bounds__(kThreads) attention_kernel(AttnParams p) {
  constexpr int kHeadsPerWarp = (HB + kWarps - 1) / kWarps;
  const int D = p.kv.head_dim, SK = k_stride(D);
  extern __shared__ float4 smem4[];             // float4: 16-byte aligned
  float* ks = reinterpret_cast<float*>(smem4);  // [kTile, SK] K tile, f32
  float* vs = ks + kTile * SK;                  // [kTile, D] V tile, f32 (16-byte aligned)
  float* ps = vs + kTile * D;                   // [HB, kTile] tile probabilities e^(s - m) (16-byte aligned)
  float* qs = ps + HB * kTile;                  // [HB, D] the run's q rows (16-byte aligned)
  __shared__ float m_s[HB], l_s[HB], alpha_s[HB];  // [HB] chunk's running max, sum; last tile's rescale

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t t = blockIdx.x, Hq = p.Hq;
  const int g = blockIdx.y / p.n_runs, run = blockIdx.y % p.n_runs;
  const int h0 = g * p.group + run * p.run_len;  // first q head of the run
  const int nh = min(p.run_len, p.group - run * p.run_len);
  const bool split = p.partials != nullptr;

  const RowSeq rs = find_row_seq(p.step, p.kv.block_size, t);
  if (rs.s < 0) {
    if (!split)
      for (int i = tid; i < nh * D; i += kThreads) p.out[(t * Hq + h0) * D + i] = quiet_nan();
    return;
  }
  const int64_t n_ctx = rs.n_ctx, n_chunks = (n_ctx + kChunk - 1) / kChunk;
  const int64_t c_begin = split ? blockIdx.z : 0, c_end = split ? c_begin + 1 : n_chunks;
  if (c_begin >= n_chunks) return;
  const int64_t p_begin = c_begin * kChunk, p_end = min(n_ctx, c_end * kChunk);  // this block's positions
  const int32_t* table = p.step.block_tables + rs.s * p.step.max_blocks;       // [max_blocks]
  const auto tile_rows = [&](int64_t p0) { return static_cast<int>(min(static_cast<int64_t>(kTile), p_end - p0)); };
  const RoundMap map0 = round_map<E>(D, 0);
  TileFetch<E> f;
  if (p.vec_loads) fetch_round<E>(f, map0, p.kv, table, g, p_begin, tile_rows(p_begin));

  for (int i = tid; i < HB * D; i += kThreads) qs[i] = i / D < nh ? p.q[(t * Hq + h0) * D + i] : 0.0f;
  for (int i = tid; i < HB * kTile; i += kThreads) ps[i] = 0.0f;  // heads >= nh keep zero probabilities
  if (tid < HB) {
    m_s[tid] = 0.0f;
    l_s[tid] = 0.0f;
    alpha_s[tid] = 0.0f;
  }
  float qk_scale = p.scale;
  if constexpr (E == Elem::kF8E4M3) qk_scale = __fmul_rn(p.scale, p.kv.k_scale[g]);

  float acc[kDimsPerThread][HB];      // this chunk's unnormalised output, dims d = tid + j * kThreads
  float run_acc[kDimsPerThread][HB];  // chunks merged so far (unsplit)
  float run_m[HB], run_l[HB];
  for (int64_t p0 = p_begin; p0 < p_end; p0 += kTile) {
    const int n = tile_rows(p0);
    const int64_t c = p0 / kChunk;  // tiles never straddle chunks (kChunk % kTile == 0)
    const bool first = p0 % kChunk == 0, last = p0 + kTile >= min(p_end, (c + 1) * kChunk);
    if (first) {
#pragma unroll
      for (int j = 0; j < kDimsPerThread; ++j)
#pragma unroll
        for (int h = 0; h < HB; ++h) acc[j][h] = 0.0f;
    }

    __syncthreads();  // the previous tile's readers of ks / vs / ps are done
    if (p.vec_loads) {
      const int rounds = fetch_rounds<E>(n, D);
      store_round<E>(f, map0, D, n, ks, SK, vs);
      for (int round = 1; round < rounds; ++round) {
        const RoundMap map = round_map<E>(D, round);
        fetch_round<E>(f, map, p.kv, table, g, p0, n);
        store_round<E>(f, map, D, n, ks, SK, vs);
      }
      if (p0 + kTile < p_end)  // the next tile's first round stays in flight while this one is computed
        fetch_round<E>(f, map0, p.kv, table, g, p0 + kTile, tile_rows(p0 + kTile));
    } else {
      load_tile_scalar<E>(p.kv, table, g, p0, n, ks, SK, vs);
    }
    __syncthreads();

    // Scores: warp w owns heads w, w + kWarps, ...; lane = position in the tile; each dot product runs
    // over d in order.
    float dot[kHeadsPerWarp];
#pragma unroll
    for (int i = 0; i < kHeadsPerWarp; ++i) dot[i] = 0.0f;
    if (lane < n) {
      const float* kr = ks + lane * SK;
      if (D % 4 == 0) {
        for (int d = 0; d < D; d += 4) {
          const float4 kv4 = *reinterpret_cast<const float4*>(kr + d);
#pragma unroll
          for (int i = 0; i < kHeadsPerWarp; ++i) {
            if (warp + i * kWarps < nh) {
              const float4 qv = *reinterpret_cast<const float4*>(qs + (warp + i * kWarps) * D + d);
              dot[i] = __fmaf_rn(qv.x, kv4.x, dot[i]);
              dot[i] = __fmaf_rn(qv.y, kv4.y, dot[i]);
              dot[i] = __fmaf_rn(qv.z, kv4.z, dot[i]);
              dot[i] = __fmaf_rn(qv.w, kv4.w, dot[i]);
            }
          }
        }
      } else {
        for (int d = 0; d < D; ++d) {
          const float kd = kr[d];
#pragma unroll
          for (int i = 0; i < kHeadsPerWarp; ++i)
            if (warp + i * kWarps < nh) dot[i] = __fmaf_rn(qs[(warp + i * kWarps) * D + d], kd, dot[i]);
        }
      }
    }
    // Online softmax per head: the warp's tile max and sum (fixed butterfly order), rescale of the past.
#pragma unroll
    for (int i = 0; i < kHeadsPerWarp; ++i) {
      const int h = warp + i * kWarps;
      if (h >= nh) continue;  // warp-uniform
      const float s = lane < n ? __fmul_rn(qk_scale, dot[i]) : -INFINITY;
      const float m_old = first ? -INFINITY : m_s[h], l_old = first ? 0.0f : l_s[h];
      const float m_new = fmaxf(m_old, warp_max(s));
      const float e = lane < n ? expf(__fsub_rn(s, m_new)) : 0.0f;
      ps[h * kTile + lane] = e;
      const float sum = warp_sum(e);
      const float alpha = expf(__fsub_rn(m_old, m_new));
      if (lane == 0) {
        m_s[h] = m_new;
        l_s[h] = __fadd_rn(__fmul_rn(l_old, alpha), sum);
        alpha_s[h] = alpha;
      }
    }
    __syncthreads();

#pragma unroll
    for (int j = 0; j < kDimsPerThread; ++j)
      if (tid + j * kThreads < D) accumulate_tile<HB>(acc[j], vs + tid + j * kThreads, D, ps, alpha_s, n);

    if (!last) continue;
    // The chunk's state. m_s / l_s were written before the last barrier; their next writers (the next
    // chunk's first tile) come after two more.
    if (split) {
#pragma unroll
      for (int h = 0; h < HB; ++h) {
        if (h >= nh) continue;
        float* part = p.partials + ((t * Hq + h0 + h) * p.max_chunks + c) * (2 + D);  // [2 + D]
        if (tid == 0) {
          part[0] = m_s[h];
          part[1] = l_s[h];
        }
#pragma unroll
        for (int j = 0; j < kDimsPerThread; ++j)
          if (tid + j * kThreads < D) part[2 + tid + j * kThreads] = acc[j][h];
      }
    } else {
#pragma unroll
      for (int h = 0; h < HB; ++h) {
        if (c == 0) {
          run_m[h] = m_s[h];
          run_l[h] = l_s[h];
#pragma unroll
          for (int j = 0; j < kDimsPerThread; ++j) run_acc[j][h] = acc[j][h];
        } else {
          const MergeWeights w = merge_weights(run_m[h], m_s[h]);
          run_m[h] = w.m;
          run_l[h] = merge(run_l[h], l_s[h], w);
#pragma unroll
          for (int j = 0; j < kDimsPerThread; ++j) run_acc[j][h] = merge(run_acc[j][h], acc[j][h], w);
        }
      }
    }
  }
  if (split) return;

  float v_scale = 1.0f;
  if constexpr (E == Elem::kF8E4M3) v_scale = p.kv.v_scale[g];
#pragma unroll
  for (int h = 0; h < HB; ++h)
#pragma unroll
    for (int j = 0; j < kDimsPerThread; ++j)
      if (h < nh && tid + j * kThreads < D)
        p.out[(t * Hq + h0 + h) * D + tid + j * kThreads] = finish(run_acc[j][h], run_l[h], v_scale);
}

/// Merges a row's chunk partials in chunk order, as attention_kernel does unsplit. Grid (T, Hq); block kThreads.
__global__ void __launch_bounds__(kThreads) combine_kernel(AttnParams p) {
  constexpr int kBatch = 8;  // chunks loaded together
  const int D = p.kv.head_dim, tid = threadIdx.x;
  const int64_t t = blockIdx.x, h = blockIdx.y, Hq = p.Hq;
  float* out = p.out + (t * Hq + h) * D;  // [D]
  const RowSeq rs = find_row_seq(p.step, p.kv.block_size, t);
  if (rs.s < 0) {
    for (int d = tid; d < D; d += kThreads) out[d] = quiet_nan();
    return;
  }
  const int64_t n_chunks = (rs.n_ctx + kChunk - 1) / kChunk;
  const float* part = p.partials + (t * Hq + h) * p.max_chunks * (2 + D);  // [max_chunks, 2 + D]

  // A batch of chunk states; the next batch's loads are issued before the current one is merged.
  struct Batch {
    float m[kBatch], l[kBatch], a[kBatch][kDimsPerThread];
  };
  const auto load = [&](Batch& b, int64_t c0) {
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      if (c0 + i >= n_chunks) continue;
      const float* pc = part + (c0 + i) * (2 + D);  // [2 + D]
      b.m[i] = pc[0];
      b.l[i] = pc[1];
#pragma unroll
      for (int j = 0; j < kDimsPerThread; ++j) b.a[i][j] = tid + j * kThreads < D ? pc[2 + tid + j * kThreads] : 0.0f;
    }
  };
  Batch cur, next;
  load(cur, 0);
  float m = cur.m[0], l = cur.l[0], acc[kDimsPerThread];  // chunk 0 starts the merge
#pragma unroll
  for (int j = 0; j < kDimsPerThread; ++j) acc[j] = cur.a[0][j];
  for (int64_t c0 = 0; c0 < n_chunks; c0 += kBatch) {
    if (c0 + kBatch < n_chunks) load(next, c0 + kBatch);
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      if (c0 + i == 0 || c0 + i >= n_chunks) continue;
      const MergeWeights w = merge_weights(m, cur.m[i]);
      m = w.m;
      l = merge(l, cur.l[i], w);
#pragma unroll
      for (int j = 0; j < kDimsPerThread; ++j) acc[j] = merge(acc[j], cur.a[i][j], w);
    }
    cur = next;
  }
  const float v_scale = p.kv.elem == Elem::kF8E4M3 ? p.kv.v_scale[h / p.group] : 1.0f;
#pragma unroll
  for (int j = 0; j < kDimsPerThread; ++j)
    if (tid + j * kThreads < D) out[tid + j * kThreads] = finish(acc[j], l, v_scale);
}

// --- host --------------------------------------------------------------------------------------------------

/// How attention runs: a function of the launcher's arguments only (attention_scratch_bytes must agree).
struct Plan {
  bool ok = false;
  int group = 0, n_runs = 0, run_len = 0, heads = 0;  // heads: the HB instance (>= run_len)
  int64_t max_chunks = 0;
  size_t scratch = 0;  // > 0: split-KV
};

Plan make_plan(int64_t T, int Hq, int head_dim, const DeviceStep& step, const DeviceKv& kv) {
  Plan pl;
  const bool elem_ok = kv.elem == Elem::kF32 || kv.elem == Elem::kBF16 ||
                       (kv.elem == Elem::kF8E4M3 && kv.k_scale && kv.v_scale);
  if (!elem_ok || T < 0 || T > INT32_MAX || Hq <= 0 || kv.n_kv_heads <= 0 || Hq % kv.n_kv_heads != 0 ||
      head_dim != kv.head_dim || head_dim <= 0 || head_dim > kMaxHeadDim || kv.block_size <= 0 ||
      step.max_blocks <= 0 || !kv.k || !kv.v)
    return pl;
  pl.ok = true;
  pl.group = Hq / kv.n_kv_heads;
  pl.n_runs = (pl.group + kMaxHeadsPerBlock - 1) / kMaxHeadsPerBlock;
  pl.run_len = (pl.group + pl.n_runs - 1) / pl.n_runs;
  pl.heads = pl.run_len <= 1 ? 1 : pl.run_len <= 2 ? 2 : pl.run_len <= 4 ? 4 : 8;
  pl.max_chunks = (step.max_blocks * kv.block_size + kChunk - 1) / kChunk;
  const size_t bytes = static_cast<size_t>(T) * Hq * pl.max_chunks * (2 + head_dim) * sizeof(float);
  const bool split = pl.max_chunks > 1 && pl.max_chunks <= 65535 &&
                     T * kv.n_kv_heads * pl.n_runs < kSplitBelowBlocks && bytes <= kMaxScratchBytes;
  pl.scratch = split ? bytes : 0;
  return pl;
}

size_t attn_smem_bytes(int D, int heads) {
  return static_cast<size_t>(kTile * k_stride(D) + kTile * D + heads * D + heads * kTile) * sizeof(float);
}

template <Elem E, int HB>
cudaError_t launch_attention(const AttnParams& p, dim3 grid, size_t smem, cudaStream_t stream) {
  if (smem > kDefaultSharedBytes) {
    const cudaError_t err = cudaFuncSetAttribute(attention_kernel<E, HB>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (err != cudaSuccess) return err;
  }
  attention_kernel<E, HB><<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

template <Elem E>
cudaError_t launch_attention(const AttnParams& p, int heads, dim3 grid, size_t smem, cudaStream_t stream) {
  switch (heads) {
    case 1: return launch_attention<E, 1>(p, grid, smem, stream);
    case 2: return launch_attention<E, 2>(p, grid, smem, stream);
    case 4: return launch_attention<E, 4>(p, grid, smem, stream);
    default: return launch_attention<E, 8>(p, grid, smem, stream);
  }
}

template <Elem E>
bool vec_loads_ok(const DeviceKv& kv) {
  const auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  return kv.head_dim % kVecElems<E> == 0 && aligned(kv.k) && aligned(kv.v);
}

}  // namespace

cudaError_t kv_store(const float* k, const float* v, const DeviceKv& kv, const DeviceStep& step,
                     cudaStream_t stream) {
  if (step.n_tokens <= 0) return cudaSuccess;
  if (step.n_tokens > INT32_MAX || kv.n_kv_heads <= 0 || kv.head_dim <= 0 || kv.block_size <= 0 || !kv.k ||
      !kv.v)
    return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(step.n_tokens));
  switch (kv.elem) {
    case Elem::kF32: kv_store_kernel<Elem::kF32><<<grid, kThreads, 0, stream>>>(k, v, kv, step); break;
    case Elem::kBF16: kv_store_kernel<Elem::kBF16><<<grid, kThreads, 0, stream>>>(k, v, kv, step); break;
    case Elem::kF8E4M3:
      if (!kv.k_scale || !kv.v_scale) return cudaErrorInvalidValue;
      kv_store_kernel<Elem::kF8E4M3><<<grid, kThreads, 0, stream>>>(k, v, kv, step);
      break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

size_t attention_scratch_bytes(int64_t T, int Hq, int head_dim, const DeviceStep& step, const DeviceKv& kv) {
  return make_plan(T, Hq, head_dim, step, kv).scratch;
}

cudaError_t attention(const float* q, int64_t T, int Hq, const DeviceKv& kv, const DeviceStep& step, float scale,
                      float* out, void* scratch, cudaStream_t stream) {
  if (T <= 0) return cudaSuccess;
  const Plan pl = make_plan(T, Hq, kv.head_dim, step, kv);
  if (!pl.ok) return cudaErrorInvalidValue;
  const bool split = pl.scratch > 0 && scratch != nullptr;  // unsplit gives the same bits, only slower
  AttnParams p{.q = q,
               .out = out,
               .partials = split ? static_cast<float*>(scratch) : nullptr,
               .kv = kv,
               .step = step,
               .scale = scale,
               .Hq = Hq,
               .group = pl.group,
               .n_runs = pl.n_runs,
               .run_len = pl.run_len,
               .max_chunks = pl.max_chunks,
               .vec_loads = false};
  const dim3 grid(static_cast<unsigned>(T), static_cast<unsigned>(kv.n_kv_heads * pl.n_runs),
                  split ? static_cast<unsigned>(pl.max_chunks) : 1u);
  const size_t smem = attn_smem_bytes(kv.head_dim, pl.heads);
  cudaError_t err = cudaErrorInvalidValue;
  switch (kv.elem) {
    case Elem::kF32:
      p.vec_loads = vec_loads_ok<Elem::kF32>(kv);
      err = launch_attention<Elem::kF32>(p, pl.heads, grid, smem, stream);
      break;
    case Elem::kBF16:
      p.vec_loads = vec_loads_ok<Elem::kBF16>(kv);
      err = launch_attention<Elem::kBF16>(p, pl.heads, grid, smem, stream);
      break;
    case Elem::kF8E4M3:
      p.vec_loads = vec_loads_ok<Elem::kF8E4M3>(kv);
      err = launch_attention<Elem::kF8E4M3>(p, pl.heads, grid, smem, stream);
      break;
    default: break;
  }
  if (err != cudaSuccess || !split) return err;
  combine_kernel<<<dim3(static_cast<unsigned>(T), static_cast<unsigned>(Hq)), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace tandem::ops::cuda
