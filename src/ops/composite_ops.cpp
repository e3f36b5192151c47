// Default implementations of the Backend's fused ops as compositions of its primitive ops (see ops.h). A
// backend overrides them with a fused kernel; the results must not differ from these.
#include "ops/ops.h"

namespace tandem::ops {

void Backend::linears(const Tensor& x, std::span<const LinearWeight* const> ws, std::span<const Tensor> ys) {
  TANDEM_CHECK(ws.size() == ys.size(), "linears: {} weights for {} outputs", ws.size(), ys.size());
  for (size_t i = 0; i < ws.size(); ++i) linear(x, *ws[i], ys[i]);
}

void Backend::linears_prefill(const Tensor& x, std::span<const LinearWeight* const> ws, std::span<const Tensor> ys) {
  if (!prefill_linear_differs()) return linears(x, ws, ys);
  TANDEM_CHECK(ws.size() == ys.size(), "linears_prefill: {} weights for {} outputs", ws.size(), ys.size());
  for (size_t i = 0; i < ws.size(); ++i) linear_prefill(x, *ws[i], ys[i]);
}

namespace {
/// down(silu(gate(x)) * up(x)) through linears / linear, or their prefill entry points.
void compose_mlp(Backend& be, bool prefill, const Tensor& x, const MlpWeights& w, const Tensor& out) {
  const int64_t T = x.dim(0), I = w.gate_proj.out_features();
  Buffer g = be.alloc(DType::kF32, {T, I});  // [T, I]
  Buffer u = be.alloc(DType::kF32, {T, I});  // [T, I]
  const LinearWeight* ws[] = {&w.gate_proj, &w.up_proj};
  const Tensor ys[] = {g.view(), u.view()};
  if (prefill) be.linears_prefill(x, ws, ys);
  else be.linears(x, ws, ys);
  be.silu_mul(g.view(), u.view(), g.view());
  if (prefill) be.linear_prefill(g.view(), w.down_proj, out);
  else be.linear(g.view(), w.down_proj, out);
}
}  // namespace

void Backend::mlp(const Tensor& x, const MlpWeights& w, const Tensor& out) { compose_mlp(*this, false, x, w, out); }

void Backend::mlp_prefill(const Tensor& x, const MlpWeights& w, const Tensor& out) {
  if (!prefill_linear_differs()) return mlp(x, w, out);
  compose_mlp(*this, true, x, w, out);
}

}  // namespace tandem::ops
