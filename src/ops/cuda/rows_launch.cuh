// The launch shape of the row-wise kernels (elementwise.cu, prefill.cu): a block spans up to 256 columns of one
// row; rows go down the grid's y dimension (strided past its limit), columns across x.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace tandem::ops::cuda {

struct RowsLaunch {
  dim3 grid;
  dim3 block;
};

/// A launch over R rows of `cols` columns.
inline RowsLaunch rows_launch(int64_t R, int64_t cols) {
  constexpr int64_t kThreads = 256, kMaxGridX = int64_t{1} << 20, kMaxGridY = 65535;
  const int64_t threads = std::min<int64_t>(kThreads, (cols + 31) / 32 * 32);
  const int64_t bx = std::min((cols + threads - 1) / threads, kMaxGridX);
  const int64_t by = std::min(R, kMaxGridY);
  return {dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by)), dim3(static_cast<unsigned>(threads))};
}

}  // namespace tandem::ops::cuda
