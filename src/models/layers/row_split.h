// The linears of a step split by kind of row (ops.h, Backend::linear_prefill): the step's leading decode / verify
// rows go to the exact entry point (linear, linears, mlp), its prefill rows to the prefill one, which may run a GEMM
// with other bits. A decode or verify row then has the bits it has alone, whatever prefill shares its step, and a
// prompt row the bits it has however the prompt is chunked. Every linear of the model goes through these (MoE
// experts excepted: moe_experts has one path for every row).
#pragma once

#include <span>

#include "models/layers/context.h"

namespace tandem::models {

/// y[T, out] = x[T, in] @ W^T + b: rows [0, exact_rows) through Backend::linear, the rest through
/// linear_prefill. 0 <= exact_rows <= T. One linear() call for all rows on a backend whose two entry points agree.
void split_linear(ops::Backend& be, int64_t exact_rows, const Tensor& x, const ops::LinearWeight& w, const Tensor& y);

/// ys[i][T, out_i] = x[T, in] @ ws[i]^T + b_i, split as split_linear (Backend::linears / linears_prefill).
void split_linears(ops::Backend& be, int64_t exact_rows, const Tensor& x, std::span<const ops::LinearWeight* const> ws,
                   std::span<const Tensor> ys);

/// out[T, H] = down(silu(gate(x)) * up(x)), split as split_linear (Backend::mlp / mlp_prefill).
void split_mlp(ops::Backend& be, int64_t exact_rows, const Tensor& x, const ops::MlpWeights& w, const Tensor& out);

/// The same on a tensor of the step's T rows: exact_rows = the step's decode rows.
inline void split_linear(const StepContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& y) {
  split_linear(ctx.backend, ctx.state.decode_rows, x, w, y);
}
inline void split_linears(const StepContext& ctx, const Tensor& x, std::span<const ops::LinearWeight* const> ws,
                          std::span<const Tensor> ys) {
  split_linears(ctx.backend, ctx.state.decode_rows, x, ws, ys);
}
inline void split_mlp(const StepContext& ctx, const Tensor& x, const ops::MlpWeights& w, const Tensor& out) {
  split_mlp(ctx.backend, ctx.state.decode_rows, x, w, out);
}

}  // namespace tandem::models
