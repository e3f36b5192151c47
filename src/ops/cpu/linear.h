// Linear layers on the CPU: validation of a LinearWeight, and the threaded driver over the ISA kernel.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "ops/cpu/cpu_context.h"

namespace tandem::ops::cpu {

/// A LinearWeight checked once and put into kernel form (scale and bias as f32, converting them when the
/// checkpoint stored another float dtype). Holds no pointer into itself, so it may be moved freely.
class PreparedLinear {
 public:
  /// `what` names the layer in error messages.
  PreparedLinear(const LinearWeight& w, std::string_view what);

  int64_t in() const { return base_.in; }
  int64_t out() const { return base_.out; }

  /// The kernel problem for n_tokens rows of x (x_rows[i], or row i when x_rows is null) with row stride
  /// x_ld, writing y[t * y_ld + (o - y_col0)].
  LinearProblem problem(const float* x, int64_t x_ld, const int32_t* x_rows, int64_t n_tokens, float* y,
                        int64_t y_ld, int64_t y_col0) const;

 private:
  LinearProblem base_;
  std::vector<float> scale_f32_;  // [scale numel], only when the stored scale is not f32
  std::vector<float> bias_f32_;   // [out], only when the stored bias is not f32
};

/// Runs every output row and token of `p` on the pool: rows are split across threads (and tokens too when
/// there are fewer row blocks than threads). Results do not depend on the split (see LinearRowsFn).
void run_linear(const CpuContext& ctx, const LinearProblem& p);

/// run_linear for several problems of the same token count in one parallel loop: their rows are split
/// across threads together, so small projections (q, k, v) neither wait on each other nor leave a thread
/// idle at the end of each one.
void run_linears(const CpuContext& ctx, std::span<const LinearProblem> ps);

/// y[T, out] = x[T, in] @ W^T + b (Backend::linear).
void linear(const CpuContext& ctx, const Tensor& x, const LinearWeight& w, const Tensor& y);

/// ys[i] = x @ ws[i]^T + b_i for every i, in one pass (Backend::linears).
void linears(const CpuContext& ctx, const Tensor& x, std::span<const LinearWeight* const> ws,
             std::span<const Tensor> ys);

/// Converts n floats of any float dtype to f32.
void to_f32(const Tensor& t, float* dst);

}  // namespace tandem::ops::cpu
