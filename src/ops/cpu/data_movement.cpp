// The CPU's data-movement ops and small row reductions (see ops.h for the contracts). Simple and memory-bound.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/cpu/cpu_ops.h"

namespace tandem::ops::cpu {

void copy_cols(const Tensor& src, int64_t src_col, const Tensor& dst, int64_t dst_col, int64_t n_cols) {
  const int64_t rows = src.dim(0), a = src.numel() / std::max<int64_t>(rows, 1), b = dst.numel() / std::max<int64_t>(dst.dim(0), 1);
  TANDEM_CHECK(dst.dim(0) == rows && src_col + n_cols <= a && dst_col + n_cols <= b,
               "copy_cols: src {} cols [{}, +{}) -> dst {} col {}", src.shape.str(), src_col, n_cols,
               dst.shape.str(), dst_col);
  const float* s = src.ptr<float>();
  float* d = dst.ptr<float>();
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(d + r * b + dst_col, s + r * a + src_col, static_cast<size_t>(n_cols) * sizeof(float));
}

void gather_rows(const Tensor& src, const Tensor& rows, const Tensor& dst) {
  const int64_t n = src.numel() / std::max<int64_t>(src.dim(0), 1), R = rows.numel();
  TANDEM_CHECK(rows.dtype == DType::kI32 && src.dtype == dst.dtype && dtype_size(src.dtype) == 4 &&
                   dst.dim(0) == R && dst.numel() == n * R,
               "gather_rows: {} rows of {} into {}", R, src.shape.str(), dst.shape.str());
  const int32_t* r = rows.ptr<int32_t>();
  const char* s = static_cast<const char*>(src.data);
  char* d = static_cast<char*>(dst.data);
  const size_t row_bytes = static_cast<size_t>(n) * 4;
  for (int64_t i = 0; i < R; ++i) {
    TANDEM_CHECK(r[i] >= 0 && r[i] < src.dim(0), "gather_rows: row {} out of range {}", r[i], src.dim(0));
    std::memcpy(d + i * row_bytes, s + r[i] * row_bytes, row_bytes);
  }
}

void copy_rows(const Tensor& src, const Tensor& src_rows, const Tensor& dst, const Tensor& dst_rows) {
  const int64_t n = src.numel() / std::max<int64_t>(src.dim(0), 1), R = src_rows.numel();
  TANDEM_CHECK(src_rows.dtype == DType::kI32 && dst_rows.dtype == DType::kI32 && dst_rows.numel() == R &&
                   src.dtype == dst.dtype && dtype_size(src.dtype) == 4 &&
                   dst.numel() == n * std::max<int64_t>(dst.dim(0), 0),
               "copy_rows: {} rows of {} into {}", R, src.shape.str(), dst.shape.str());
  const int32_t* sr = src_rows.ptr<int32_t>();
  const int32_t* dr = dst_rows.ptr<int32_t>();
  const char* s = static_cast<const char*>(src.data);
  char* d = static_cast<char*>(dst.data);
  const size_t row_bytes = static_cast<size_t>(n) * 4;
  for (int64_t i = 0; i < R; ++i) {
    TANDEM_CHECK(sr[i] >= 0 && sr[i] < src.dim(0) && dr[i] >= 0 && dr[i] < dst.dim(0),
                 "copy_rows: row {} -> {} out of range {} -> {}", sr[i], dr[i], src.dim(0), dst.dim(0));
    std::memcpy(d + dr[i] * row_bytes, s + sr[i] * row_bytes, row_bytes);
  }
}

void mul_sigmoid(const Tensor& x, const Tensor& gate, const Tensor& out) {
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

void argmax_rows(const CpuContext& ctx, const Tensor& logits, const Tensor& ids) {
  const int64_t R = logits.dim(0), V = logits.numel() / std::max<int64_t>(R, 1);
  TANDEM_CHECK(logits.dtype == DType::kF32 && ids.dtype == DType::kI32 && ids.numel() == R,
               "argmax_rows: logits {} ids {}", logits.shape.str(), ids.shape.str());
  const float* l = logits.ptr<float>();
  int32_t* out = ids.ptr<int32_t>();
  ctx.pool->parallel_for(R, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* row = l + r * V;
      int64_t best = 0;
      for (int64_t v = 1; v < V; ++v)
        if (row[v] > row[best]) best = v;
      out[r] = static_cast<int32_t>(best);
    }
  });
}

}  // namespace tandem::ops::cpu
