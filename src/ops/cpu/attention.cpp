// Paged KV store and causal GQA attention. Cache layout (KvLayerView): K and V are each
// [n_blocks, block_size, n_kv_heads, head_dim] of the view's dtype (f32, bf16 or f8_e4m3); position pos of a
// sequence lives in physical block block_table[pos / block_size], slot pos % block_size.
//
// Precision: kv_store rounds each f32 element on its own (bf16: round-to-nearest-even; fp8: x / scale, then
// saturating round-to-nearest-even to e4m3), so a stored element depends on that token's k/v only, never on
// the batch. attention reads elements exactly (dispatch.h) and applies an fp8 head's scales outside the
// kernels: k_scale multiplies the score scale, v_scale the softmax normaliser (both constant over a head).
#include <algorithm>
#include <bit>
#include <cstring>
#include <vector>

#include "ops/cpu/cpu_ops.h"

namespace tandem::ops::cpu {
namespace {

void check_view(const KvLayerView& kv, const char* op) {
  TANDEM_CHECK(kv.k && kv.v && kv.n_blocks > 0 && kv.block_size > 0 && kv.n_kv_heads > 0 && kv.head_dim > 0,
               "{}: incomplete KV view (n_blocks {}, block_size {}, n_kv_heads {}, head_dim {})", op,
               kv.n_blocks, kv.block_size, kv.n_kv_heads, kv.head_dim);
  TANDEM_CHECK(kv.dtype == DType::kF32 || kv.dtype == DType::kBF16 || kv.dtype == DType::kF8E4M3,
               "{}: KV cache dtype {} is not one of F32, BF16, F8_E4M3", op, dtype_name(kv.dtype));
  TANDEM_CHECK(kv.dtype != DType::kF8E4M3 || (kv.k_scale && kv.v_scale),
               "{}: an F8_E4M3 KV view needs k_scale and v_scale ([n_kv_heads] f32)", op);
}

/// Scale of kv head g: the fp8 view's per-head scale, 1 for f32 / bf16 (an exact no-op when multiplied).
float head_scale(const KvLayerView& kv, const float* scales, int64_t g) {
  return kv.dtype == DType::kF8E4M3 ? scales[g] : 1.0f;
}

/// Writes one token's [Hkv, D] f32 row into a cache slot of the view's dtype (see the file comment).
void store_row(const KvLayerView& kv, const float* src, void* cache, int64_t slot, const float* scales) {
  const int64_t D = kv.head_dim, row = int64_t{kv.n_kv_heads} * D;
  switch (kv.dtype) {
    case DType::kF32:
      std::memcpy(static_cast<float*>(cache) + slot * row, src, static_cast<size_t>(row) * sizeof(float));
      return;
    case DType::kBF16: {
      uint16_t* dst = static_cast<uint16_t*>(cache) + slot * row;
      for (int64_t i = 0; i < row; ++i) dst[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::kF8E4M3: {
      uint8_t* dst = static_cast<uint8_t*>(cache) + slot * row;
      for (int64_t g = 0; g < kv.n_kv_heads; ++g)
        for (int64_t i = g * D; i < (g + 1) * D; ++i) dst[i] = kv_f32_to_f8e4m3(src[i] / scales[g]);
      return;
    }
    default:
      fail("kv_store: KV cache dtype {}", dtype_name(kv.dtype));
  }
}

/// Checks that every sequence's rows lie in [0, T) and that every block its positions use is a valid
/// physical block.
void check_seqs(std::span<const SeqSlice> seqs, int64_t T, const KvLayerView& kv, const char* op) {
  for (size_t s = 0; s < seqs.size(); ++s) {
    const SeqSlice& sq = seqs[s];
    TANDEM_CHECK(
        sq.n_tokens >= 0 && sq.start_pos >= 0 && sq.token_begin >= 0 && sq.token_begin + sq.n_tokens <= T,
        "{}: sequence {} covers rows [{}, +{}) at position {}, batch has {} rows", op, s, sq.token_begin,
        sq.n_tokens, sq.start_pos, T);
    if (sq.n_tokens == 0) continue;
    TANDEM_CHECK(sq.block_table != nullptr, "{}: sequence {} has no block table", op, s);
    const int64_t n_logical = (int64_t{sq.start_pos} + sq.n_tokens + kv.block_size - 1) / kv.block_size;
    for (int64_t b = 0; b < n_logical; ++b)
      TANDEM_CHECK(sq.block_table[b] >= 0 && sq.block_table[b] < kv.n_blocks,
                   "{}: sequence {} logical block {} maps to physical block {}, cache has {}", op, s, b,
                   sq.block_table[b], kv.n_blocks);
  }
}

/// Prefetches one kv head's rows of the block holding position p0. A head's rows are head_dim elements every
/// n_kv_heads * head_dim, i.e. short runs on separate pages that hardware prefetchers do not follow.
void prefetch_rows(const void* cache, size_t elem, const SeqSlice& sq, int64_t p0, int64_t n_ctx, int64_t bs,
                   int64_t Hkv, int64_t g, int64_t D) {
  const int64_t row_bytes = D * static_cast<int64_t>(elem), stride = Hkv * row_bytes;
  const char* base =
      static_cast<const char*>(cache) + (int64_t{sq.block_table[p0 / bs]} * bs * Hkv + g) * row_bytes;
  const int64_t n = std::min(bs, n_ctx - p0);
  constexpr int64_t kLineBytes = 64;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < row_bytes; i += kLineBytes) __builtin_prefetch(base + r * stride + i);
}

}  // namespace

uint8_t kv_f32_to_f8e4m3(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return 0x7f;          // NaN
  if (a >= 0x43e00000u) return sign | 0x7e;  // |f| >= 448 (or inf): the largest finite, +-448
  if (a < 0x3c800000u) {                     // |f| < 2^-6: e4m3 subnormals, multiples of 2^-9
    // Adding and removing 2^23 rounds |f| * 512 (< 8, exact) to an integer, ties to even.
    const float q = (std::bit_cast<float>(a) * 512.0f + 8388608.0f) - 8388608.0f;
    return sign | static_cast<uint8_t>(q);  // q == 8 is 2^-6, the first normal: the same encoding
  }
  // Normal: keep 3 of the 23 mantissa bits, ties to even (a carry moves into the exponent), then rebias the
  // exponent from 127 to 7. |f| < 448 rounds to at most 448 = 0x7e, never to the NaN pattern 0x7f.
  const uint32_t r = a + 0x7ffffu + ((a >> 20) & 1u);
  return sign | static_cast<uint8_t>((r >> 20) - (120u << 3));
}

void kv_store(const CpuContext& ctx, const Tensor& k, const Tensor& v, const KvLayerView& kv,
              std::span<const SeqSlice> seqs) {
  check_view(kv, "kv_store");
  TANDEM_CHECK(k.dtype == DType::kF32 && v.dtype == DType::kF32 && k.rank() == 3 && k.shape == v.shape &&
                   k.dim(1) == kv.n_kv_heads && k.dim(2) == kv.head_dim,
               "kv_store: k {} and v {} must be f32 [T, {}, {}]", k.shape.str(), v.shape.str(), kv.n_kv_heads,
               kv.head_dim);
  check_seqs(seqs, k.dim(0), kv, "kv_store");
  const int64_t row = int64_t{kv.n_kv_heads} * kv.head_dim;  // elements per token per cache
  // Converting stores cost a few operations per element; a plain copy about one.
  const int64_t cost = kv.dtype == DType::kF32 ? 2 * row : 8 * row;
  for (const SeqSlice& sq : seqs) {
    ctx.pool->parallel_for(sq.n_tokens, grain_for(cost), [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; ++j) {
        const int64_t pos = sq.start_pos + j;
        const int64_t slot =
            int64_t{sq.block_table[pos / kv.block_size]} * kv.block_size + pos % kv.block_size;
        store_row(kv, k.ptr<const float>() + (sq.token_begin + j) * row, kv.k, slot, kv.k_scale);
        store_row(kv, v.ptr<const float>() + (sq.token_begin + j) * row, kv.v, slot, kv.v_scale);
      }
    });
  }
}

void attention(const CpuContext& ctx, const Tensor& q, const KvLayerView& kv, std::span<const SeqSlice> seqs,
               float scale, const Tensor& out) {
  check_view(kv, "attention");
  TANDEM_CHECK(q.dtype == DType::kF32 && q.rank() == 3 && q.dim(2) == kv.head_dim,
               "attention: q must be f32 [T, Hq, {}], got {} {}", kv.head_dim, dtype_name(q.dtype),
               q.shape.str());
  TANDEM_CHECK(out.dtype == DType::kF32 && out.shape == q.shape && out.data != q.data,
               "attention: out must be a separate f32 {} tensor, got {}", q.shape.str(), out.shape.str());
  const int64_t T = q.dim(0), Hq = q.dim(1), D = kv.head_dim, Hkv = kv.n_kv_heads;
  TANDEM_CHECK(Hq % Hkv == 0, "attention: {} query heads are not a multiple of {} kv heads", Hq, Hkv);
  check_seqs(seqs, T, kv, "attention");
  std::vector<int32_t> row_seq(static_cast<size_t>(T), -1);  // [T] sequence of each token row
  for (size_t s = 0; s < seqs.size(); ++s)
    for (int64_t j = 0; j < seqs[s].n_tokens; ++j) {
      int32_t& owner = row_seq[static_cast<size_t>(seqs[s].token_begin + j)];
      TANDEM_CHECK(owner < 0, "attention: token row {} belongs to sequences {} and {}",
                   seqs[s].token_begin + j, owner, s);
      owner = static_cast<int32_t>(s);
    }
  for (int64_t t = 0; t < T; ++t)
    TANDEM_CHECK(row_seq[static_cast<size_t>(t)] >= 0, "attention: token row {} belongs to no sequence", t);

  const int64_t group = Hq / Hkv;
  const int64_t kv_stride = Hkv * D;  // elements between consecutive slots of one head
  const int64_t bs = kv.block_size;
  const KernelTable& kt = *ctx.kernels;
  const AttentionKernels& ak = attention_kernels(kt, kv.dtype);
  const size_t elem = dtype_size(kv.dtype);
  // Element offset of kv head g's row in the first slot of the block holding position p0.
  auto block_base = [&](const SeqSlice& sq, int64_t p0, int64_t g) {
    return (int64_t{sq.block_table[p0 / bs]} * bs * Hkv + g) * D;
  };
  // One unit = (token, kv head, a run of that kv head's q heads). Each K/V block is loaded from memory
  // once per unit and then reused from L1 by every q head of the run, instead of once per q head (12x
  // less traffic for GLM's 96/8 heads). Runs are split only as far as needed to occupy every thread.
  const int64_t n_runs = std::clamp<int64_t>((2 * ctx.pool->size() + T * Hkv - 1) / (T * Hkv), 1, group);
  const int64_t run_len = (group + n_runs - 1) / n_runs;
  const int64_t runs_per_kv = (group + run_len - 1) / run_len;
  ctx.pool->parallel_for(T * Hkv * runs_per_kv, 1, [&](int64_t ub, int64_t ue) {
    std::vector<float> scores;   // [run_len, n_ctx]
    std::vector<float> inv_sum;  // [run_len]
    for (int64_t u = ub; u < ue; ++u) {
      const int64_t t = u / (Hkv * runs_per_kv), g = (u / runs_per_kv) % Hkv, run = u % runs_per_kv;
      const int64_t h0 = g * group + run * run_len, nh = std::min(run_len, group - run * run_len);
      const SeqSlice& sq = seqs[static_cast<size_t>(row_seq[static_cast<size_t>(t)])];
      const int64_t n_ctx = sq.start_pos + (t - sq.token_begin) + 1;  // causal: positions [0, n_ctx)
      scores.resize(static_cast<size_t>(nh * n_ctx));
      const float* q0 = q.ptr<const float>() + (t * Hq + h0) * D;
      float* o0 = out.ptr<float>() + (t * Hq + h0) * D;
      const float qk_scale = scale * head_scale(kv, kv.k_scale, g);
      for (int64_t p0 = 0; p0 < n_ctx; p0 += bs) {
        const int n = static_cast<int>(std::min(bs, n_ctx - p0));
        const void* kb = static_cast<const char*>(kv.k) + block_base(sq, p0, g) * elem;
        if (p0 + bs < n_ctx) prefetch_rows(kv.k, elem, sq, p0 + bs, n_ctx, bs, Hkv, g, D);
        ak.qk_rows(q0, D, static_cast<int>(nh), kb, kv_stride, n, D, qk_scale, &scores[p0], n_ctx);
      }
      inv_sum.resize(static_cast<size_t>(nh));
      const float v_scale = head_scale(kv, kv.v_scale, g);
      for (int64_t h = 0; h < nh; ++h) {
        float* sc = &scores[h * n_ctx];
        const float mx = *std::max_element(sc, sc + n_ctx);
        inv_sum[h] = 1.0f / kt.exp_shift_sum(sc, n_ctx, mx) * v_scale;
      }
      std::fill(o0, o0 + nh * D, 0.0f);
      for (int64_t p0 = 0; p0 < n_ctx; p0 += bs) {
        const int n = static_cast<int>(std::min(bs, n_ctx - p0));
        const void* vb = static_cast<const char*>(kv.v) + block_base(sq, p0, g) * elem;
        if (p0 + bs < n_ctx) prefetch_rows(kv.v, elem, sq, p0 + bs, n_ctx, bs, Hkv, g, D);
        ak.pv_rows(&scores[p0], n_ctx, static_cast<int>(nh), vb, kv_stride, n, D, o0, D);
      }
      for (int64_t h = 0; h < nh; ++h)
        for (int64_t i = 0; i < D; ++i) o0[h * D + i] *= inv_sum[h];
    }
  });
}

}  // namespace tandem::ops::cpu
