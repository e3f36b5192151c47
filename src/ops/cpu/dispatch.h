// Instruction-set dispatch for the CPU backend. Each ISA's kernels live in their own translation unit
// (*_avx512.cpp, *_avx2.cpp get the matching -m flags from CMake; *_scalar.cpp is portable), and a
// KernelTable of function pointers is chosen once, when the backend is created.
#pragma once

#include <cstdint>
#include <string_view>

#include "ops/ops.h"

namespace tandem::ops::cpu {

enum class Isa : uint8_t { kScalar, kAvx2, kAvx512 };

std::string_view isa_name(Isa isa);
/// Whether this machine can run kernels compiled for `isa` (cpuid via __builtin_cpu_supports).
bool isa_supported(Isa isa);
/// The widest supported ISA.
Isa best_isa();

/// One linear problem as the kernels see it: y = x @ W^T (+ bias), with W dequantised on the fly.
/// Rows of y are written as y[t * y_ld + (o - y_col0)] for token t and output row o, so callers can
/// compute a slice of output rows into a small scratch buffer.
struct LinearProblem {
  const float* x = nullptr;  // [*, in] f32, row stride x_ld
  int64_t x_ld = 0;
  const int32_t* x_rows = nullptr;  // [n_tokens] rows of x to read, or nullptr for rows 0..n_tokens-1
  int64_t n_tokens = 0;
  int64_t in = 0;
  int64_t out = 0;
  const void* w = nullptr;  // [out, in] w_dtype
  DType w_dtype = DType::kF32;
  WeightQuant quant = WeightQuant::kNone;
  const float* scale = nullptr;  // f32: [1] | [out] | [ceil(out/block_out), scale_cols]; null unless fp8
  int64_t block_out = 0;
  int64_t block_in = 0;
  int64_t scale_cols = 0;
  const float* bias = nullptr;  // [out] f32 or nullptr
  float* y = nullptr;           // see above
  int64_t y_ld = 0;
  int64_t y_col0 = 0;
};

/// Computes output rows [row_begin, row_end) for tokens [tok_begin, tok_end) of `p`.
///
/// Contract that tests rely on: the value of y[t, o] depends only on x[t], W[o] and the ISA, never on
/// the row/token ranges, the thread split or n_tokens. Each (t, o) dot product is summed in fixed
/// kLinearChunk-element chunks (vector lanes, then a horizontal sum, then added to the running total).
/// This makes a verify pass over k draft tokens bit-identical to k single-token decode steps.
using LinearRowsFn = void (*)(const LinearProblem& p, int64_t row_begin, int64_t row_end, int64_t tok_begin,
                              int64_t tok_end);

/// Input-dimension chunk of the linear kernels (see LinearRowsFn). Multiple of every vector width.
inline constexpr int64_t kLinearChunk = 512;

/// Attention kernels over one KV cache element type (f32, bf16 or f8_e4m3). Every stored element is read as
/// its exact f32 value: bf16 and e4m3 widen exactly, and an fp8 cache's per-head scale is the caller's to
/// apply (it is constant over a kv head, so it folds into `scale` and into the softmax normaliser). k and v
/// are rows of that element type; strides count elements.
struct AttentionKernels {
  /// Attention scores of n_heads query heads against n_rows keys (vectors of d elements):
  /// scores[h * s_stride + r] = scale * dot(q + h * q_stride, k + r * k_stride). Each key load is shared by
  /// the heads, and every (h, r) result is independent of n_heads (same bits whatever the grouping).
  void (*qk_rows)(const float* q, int64_t q_stride, int n_heads, const void* k, int64_t k_stride, int n_rows,
                  int64_t d, float scale, float* scores, int64_t s_stride) = nullptr;
  /// acc[h * o_stride + i] += sum_r p[h * p_stride + r] * v[r * v_stride + i] for h < n_heads, i < d; rows
  /// are added in order r = 0, 1, ...
  void (*pv_rows)(const float* p, int64_t p_stride, int n_heads, const void* v, int64_t v_stride, int n_rows,
                  int64_t d, float* acc, int64_t o_stride) = nullptr;
};

/// Vector kernels for one ISA. All pointers are f32 unless stated; n may be any size (tails handled).
struct KernelTable {
  Isa isa = Isa::kScalar;
  LinearRowsFn linear_rows = nullptr;
  AttentionKernels attn_f32;   // KV cache of f32
  AttentionKernels attn_bf16;  // KV cache of bf16
  AttentionKernels attn_f8;    // KV cache of f8_e4m3
  /// x[i] = exp(x[i] - shift); returns the sum of the new values.
  float (*exp_shift_sum)(float* x, int64_t n, float shift) = nullptr;
  /// out[i] = silu(gate[i]) * up[i]; out may alias gate or up.
  void (*silu_mul)(const float* gate, const float* up, float* out, int64_t n) = nullptr;
  /// sum of x[i]^2.
  float (*sum_squares)(const float* x, int64_t n) = nullptr;
  /// sum of x[i]; used by the bandwidth probe as a pure streaming read.
  float (*sum)(const float* x, int64_t n) = nullptr;
  /// Runs `iters` rounds of independent FMAs on registers; returns the flop count it performed.
  double (*fma_loop)(int64_t iters) = nullptr;
};

/// The kernels for `isa`; fails when the machine cannot run it.
const KernelTable& kernel_table(Isa isa);
/// The table's attention kernels for a KV cache of `kv_dtype`; fails for a type the kernels do not read.
const AttentionKernels& attention_kernels(const KernelTable& table, DType kv_dtype);

// Per-ISA linear kernels (linear_<isa>.cpp) and tables (vector_<isa>.cpp).
void linear_rows_scalar(const LinearProblem& p, int64_t row_begin, int64_t row_end, int64_t tok_begin,
                        int64_t tok_end);
void linear_rows_avx2(const LinearProblem& p, int64_t row_begin, int64_t row_end, int64_t tok_begin,
                      int64_t tok_end);
void linear_rows_avx512(const LinearProblem& p, int64_t row_begin, int64_t row_end, int64_t tok_begin,
                        int64_t tok_end);
const KernelTable& scalar_kernels();
const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();

}  // namespace tandem::ops::cpu
