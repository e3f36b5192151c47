// Default implementations of the Backend's fused ops as compositions of its primitive ops (see ops.h). A
// backend overrides them with a fused kernel; the results must not differ from these.
#include "ops/ops.h"

namespace tandem::ops {

void Backend::linears(const Tensor& x, std::span<const LinearWeight* const> ws, std::span<const Tensor> ys) {
  TANDEM_CHECK(ws.size() == ys.size(), "linears: {} weights for {} outputs", ws.size(), ys.size());
  for (size_t i = 0; i < ws.size(); ++i) linear(x, *ws[i], ys[i]);
}

void Backend::mlp(const Tensor& x, const MlpWeights& w, const Tensor& out) {
  const int64_t T = x.dim(0), I = w.gate_proj.out_features();
  Buffer g = alloc(DType::kF32, {T, I});  // [T, I]
  Buffer u = alloc(DType::kF32, {T, I});  // [T, I]
  const LinearWeight* ws[] = {&w.gate_proj, &w.up_proj};
  const Tensor ys[] = {g.view(), u.view()};
  linears(x, ws, ys);
  silu_mul(g.view(), u.view(), g.view());
  linear(g.view(), w.down_proj, out);
}

}  // namespace tandem::ops
