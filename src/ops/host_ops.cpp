// Host implementations of the Backend's data-movement ops (see ops.h). They are simple and memory-bound;
// a device backend overrides them.
#include <cmath>
#include <algorithm>
#include <cstring>

#include "ops/ops.h"

namespace tandem::ops {

namespace {
void require_host(const Backend& b, const char* op) {
  TANDEM_CHECK(b.device() == Device::kCPU, "{}: the host implementation needs CPU tensors (backend {})", op,
               b.name());
}
}  // namespace

void Backend::copy_cols(const Tensor& src, int64_t src_col, const Tensor& dst, int64_t dst_col, int64_t n_cols) {
  require_host(*this, "copy_cols");
  const int64_t rows = src.dim(0), a = src.numel() / std::max<int64_t>(rows, 1), b = dst.numel() / std::max<int64_t>(dst.dim(0), 1);
  TANDEM_CHECK(dst.dim(0) == rows && src_col + n_cols <= a && dst_col + n_cols <= b,
               "copy_cols: src {} cols [{}, +{}) -> dst {} col {}", src.shape.str(), src_col, n_cols,
               dst.shape.str(), dst_col);
  const float* s = src.ptr<float>();
  float* d = dst.ptr<float>();
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(d + r * b + dst_col, s + r * a + src_col, static_cast<size_t>(n_cols) * sizeof(float));
}

void Backend::gather_rows(const Tensor& src, std::span<const int32_t> rows, const Tensor& dst) {
  require_host(*this, "gather_rows");
  const int64_t n = src.numel() / std::max<int64_t>(src.dim(0), 1);
  TANDEM_CHECK(dst.dim(0) == static_cast<int64_t>(rows.size()) && dst.numel() == n * dst.dim(0),
               "gather_rows: {} rows of {} into {}", rows.size(), src.shape.str(), dst.shape.str());
  for (size_t i = 0; i < rows.size(); ++i) {
    TANDEM_CHECK(rows[i] >= 0 && rows[i] < src.dim(0), "gather_rows: row {} out of range {}", rows[i],
                 src.dim(0));
    std::memcpy(dst.ptr<float>() + i * n, src.ptr<float>() + rows[i] * n, static_cast<size_t>(n) * sizeof(float));
  }
}

void Backend::mul_sigmoid(const Tensor& x, const Tensor& gate, const Tensor& out) {
  require_host(*this, "mul_sigmoid");
  const int64_t rows = x.dim(0), n = x.numel() / std::max<int64_t>(rows, 1);
  const int64_t gn = gate.numel() / std::max<int64_t>(gate.dim(0), 1);
  TANDEM_CHECK(gate.dim(0) == rows && (gn == n || gn == 1) && out.numel() == x.numel(),
               "mul_sigmoid: x {} gate {} out {}", x.shape.str(), gate.shape.str(), out.shape.str());
  const float* xp = x.ptr<float>();
  const float* gp = gate.ptr<float>();
  float* op = out.ptr<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      const float g = gp[r * gn + (gn == 1 ? 0 : j)];
      op[r * n + j] = xp[r * n + j] * (1.0f / (1.0f + std::exp(-g)));
    }
}

}  // namespace tandem::ops
