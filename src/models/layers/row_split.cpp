#include "models/layers/row_split.h"

#include <vector>

namespace tandem::models {

namespace {

/// Checks the split of T rows and says whether both kinds are present on a backend where they differ.
bool splits(ops::Backend& be, int64_t exact_rows, int64_t T, const char* op) {
  TANDEM_CHECK(exact_rows >= 0 && exact_rows <= T, "{}: {} exact rows of {}", op, exact_rows, T);
  return exact_rows < T && be.prefill_linear_differs();
}

}  // namespace

void split_linear(ops::Backend& be, int64_t exact_rows, const Tensor& x, const ops::LinearWeight& w, const Tensor& y) {
  const int64_t T = x.dim(0), D = exact_rows;
  if (!splits(be, D, T, "split_linear")) return be.linear(x, w, y);
  if (D > 0) be.linear(x.rows(0, D), w, y.rows(0, D));
  be.linear_prefill(x.rows(D, T - D), w, y.rows(D, T - D));
}

void split_linears(ops::Backend& be, int64_t exact_rows, const Tensor& x, std::span<const ops::LinearWeight* const> ws,
                   std::span<const Tensor> ys) {
  const int64_t T = x.dim(0), D = exact_rows;
  if (!splits(be, D, T, "split_linears")) return be.linears(x, ws, ys);
  std::vector<Tensor> head, tail;  // ys[i] rows [0, D) and [D, T)
  for (const Tensor& y : ys) {
    head.push_back(y.rows(0, D));
    tail.push_back(y.rows(D, T - D));
  }
  if (D > 0) be.linears(x.rows(0, D), ws, head);
  be.linears_prefill(x.rows(D, T - D), ws, tail);
}

void split_mlp(ops::Backend& be, int64_t exact_rows, const Tensor& x, const ops::MlpWeights& w, const Tensor& out) {
  const int64_t T = x.dim(0), D = exact_rows;
  if (!splits(be, D, T, "split_mlp")) return be.mlp(x, w, out);
  if (D > 0) be.mlp(x.rows(0, D), w, out.rows(0, D));
  be.mlp_prefill(x.rows(D, T - D), w, out.rows(D, T - D));
}

}  // namespace tandem::models
