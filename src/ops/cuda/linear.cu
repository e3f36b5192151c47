// linear: y[T, out] = x[T, in] @ W^T (+ bias), W of f32 / bf16 / f16 / fp8 e4m3 (see gemv.cuh).
//
// Grid: blockIdx.x covers output rows, kWarpsPerBlock warps of R consecutive rows each; the T rows of x are
// cut into groups of G, and blockIdx.y strides over the groups (several slices only when there are few row
// blocks and many groups). A warp computes its R rows for one group in one pass over the weights, so for
// T <= G (decode, verify) every weight byte is read once; larger T re-reads the warp's rows per group (from
// L2 while they stay there).
//
// Batch invariance: y[t, o] is gemv::warp_dot of W row o with x row t plus finish(), whose operation order
// depends only on `in` (gemv.cuh). G, R and the number of slices are chosen from T and out for speed and do
// not enter any row's arithmetic, so y[t, o] has the same bits for every T and every other row of x.
#include "ops/cuda/gemv.cuh"

namespace tandem::ops::cuda {
namespace {

using gemv::kThreads;
using gemv::kWarpsPerBlock;

/// Blocks to aim for before slicing the row groups over blockIdx.y (about 8 per SM on an H100).
constexpr int64_t kTargetBlocks = 1024;

template <Elem E, int R, int G>
__global__ void __launch_bounds__(kThreads, gemv::min_blocks_for_group(G))
    linear_kernel(const float* x /*[T, in]*/, int64_t T, DeviceLinear w, float* y /*[T, out]*/) {
  const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
  const int64_t o0 = (static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp) * R;
  if (o0 >= w.out) return;  // the whole warp; no block-level synchronisation below
  const gemv::Rows<R> rows = gemv::rows_of<R>(w, o0);
  const int in = static_cast<int>(w.in);
  const bool w_vec = gemv::rows_vectorizable(w);
  const bool x_vec = w_vec && gemv::x_vectorizable(x, in);
  static_assert(R * G <= 32, "one lane stores each result");
  const int r = lane / G, t = lane % G;  // the result this lane stores
  const gemv::Epilogue ep = gemv::epilogue(w, o0 + r < w.out ? o0 + r : w.out - 1);
  const int64_t n_groups = (T + G - 1) / G;
  for (int64_t g = blockIdx.y; g < n_groups; g += gridDim.y) {
    const int64_t t0 = g * G;
    const int nt = static_cast<int>(T - t0 < G ? T - t0 : G);
    const float* xr[G];  // each [in]; rows past T repeat the last one (computed, never stored)
#pragma unroll
    for (int j = 0; j < G; ++j) xr[j] = x + (t0 + (j < nt ? j : nt - 1)) * in;
    float acc[R][G];
    gemv::warp_dot<E, R, G>(rows, xr, in, w_vec, x_vec, acc);
    const float dot = gemv::pick<R, G>(acc, lane);
    if (lane < R * G && o0 + r < w.out && t < nt) y[(t0 + t) * w.out + o0 + r] = gemv::finish(ep, dot);
  }
}

/// Rows of x per group: the next power of two of T, at most 8.
int group_for(int64_t T) {
  return T <= 1 ? 1 : T <= 2 ? 2 : T <= 4 ? 4 : 8;
}

/// Weight rows per warp: two rows share each x load when there are enough rows to keep the SMs busy.
/// (Four rows would halve x traffic again but spill registers at G = 8.)
int rows_for(int G, int64_t out) {
  return out >= (G <= 2 ? 4096 : 2048) ? 2 : 1;
}

template <Elem E, int R, int G>
void launch(dim3 grid, const float* x, int64_t T, const DeviceLinear& w, float* y, cudaStream_t stream) {
  linear_kernel<E, R, G><<<grid, kThreads, 0, stream>>>(x, T, w, y);
}

template <Elem E>
void launch_elem(int R, int G, dim3 grid, const float* x, int64_t T, const DeviceLinear& w, float* y,
                 cudaStream_t stream) {
  switch (G * 8 + R) {
    case 1 * 8 + 1: return launch<E, 1, 1>(grid, x, T, w, y, stream);
    case 1 * 8 + 2: return launch<E, 2, 1>(grid, x, T, w, y, stream);
    case 2 * 8 + 1: return launch<E, 1, 2>(grid, x, T, w, y, stream);
    case 2 * 8 + 2: return launch<E, 2, 2>(grid, x, T, w, y, stream);
    case 4 * 8 + 1: return launch<E, 1, 4>(grid, x, T, w, y, stream);
    case 4 * 8 + 2: return launch<E, 2, 4>(grid, x, T, w, y, stream);
    case 8 * 8 + 1: return launch<E, 1, 8>(grid, x, T, w, y, stream);
    default: return launch<E, 2, 8>(grid, x, T, w, y, stream);
  }
}

}  // namespace

cudaError_t linear(const float* x, int64_t T, const DeviceLinear& w, float* y, cudaStream_t stream) {
  if (T <= 0 || w.out <= 0) return cudaSuccess;
  const int G = group_for(T), R = rows_for(G, w.out);
  const int64_t row_blocks = (w.out + kWarpsPerBlock * R - 1) / (kWarpsPerBlock * R);
  const int64_t n_groups = (T + G - 1) / G;
  int64_t slices = (kTargetBlocks + row_blocks - 1) / row_blocks;
  slices = slices < n_groups ? slices : n_groups;
  slices = slices < 65535 ? slices : 65535;
  const dim3 grid(static_cast<unsigned>(row_blocks), static_cast<unsigned>(slices));
  switch (w.elem) {
    case Elem::kF32: launch_elem<Elem::kF32>(R, G, grid, x, T, w, y, stream); break;
    case Elem::kBF16: launch_elem<Elem::kBF16>(R, G, grid, x, T, w, y, stream); break;
    case Elem::kF16: launch_elem<Elem::kF16>(R, G, grid, x, T, w, y, stream); break;
    case Elem::kF8E4M3: launch_elem<Elem::kF8E4M3>(R, G, grid, x, T, w, y, stream); break;
  }
  return cudaGetLastError();
}

}  // namespace tandem::ops::cuda
