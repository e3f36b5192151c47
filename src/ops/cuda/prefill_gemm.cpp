// PrefillGemm: the cuBLASLt GEMM behind CudaBackend::linear_prefill (see prefill_gemm.h). Host code: it
// plans and enqueues; the element-wise stages are prefill.cu's launchers.
#include "ops/cuda/prefill_gemm.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "ops/cuda/cublas_check.h"
#include "ops/cuda/cuda_check.h"

namespace tandem::ops::cuda {

namespace {

int64_t round_up(int64_t v, int64_t multiple) { return (v + multiple - 1) / multiple * multiple; }

/// The alignment in bytes (a power of two, at most 256) that every column of a matrix starting at `p`, with
/// columns `ld_bytes` apart, has: the lowest set bit of the address, the column stride and 256.
int64_t column_alignment(const void* p, int64_t ld_bytes) {
  const uint64_t bits = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)) | static_cast<uint64_t>(ld_bytes) | 256u;
  return static_cast<int64_t>(bits & (~bits + 1));
}

const char* elem_name(Elem e) {
  switch (e) {
    case Elem::kF32: return "F32";
    case Elem::kBF16: return "BF16";
    case Elem::kF16: return "F16";
    case Elem::kF8E4M3: return "F8_E4M3";
  }
  return "?";
}

/// Throws, naming `what`, when a launcher or runtime call failed; the message is formatted only then.
template <class... Args>
void check_cuda(cudaError_t status, fmt::format_string<Args...> what, Args&&... args) {
  if (status != cudaSuccess) check(status, fmt::format(what, std::forward<Args>(args)...));
}

}  // namespace

void* PrefillGemm::Scratch::get(size_t bytes) {
  if (bytes > buffer_.tensor().nbytes()) {
    buffer_ = Buffer();  // freed (stream-ordered) before the larger one is taken
    buffer_ = Buffer(allocator_, DType::kF32, Shape{static_cast<int64_t>((bytes + 3) / 4)});
  }
  return buffer_.tensor().data;
}

PrefillGemm::PrefillGemm(int device, Allocator& allocator, cudaStream_t stream)
    : device_(device),
      allocator_(allocator),
      stream_(stream),
      x_bf16_(allocator),
      w_bf16_(allocator),
      y_f32_(allocator) {
  select();
  cublasLtHandle_t handle = nullptr;
  CUBLAS_CHECK(cublasLtCreate(&handle), "create a cuBLASLt handle on GPU {}", device_);
  handle_.reset(handle);
  cublasLtMatmulDesc_t desc = nullptr;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
               "create the prefill matmul descriptor (compute 32F, scale F32) on GPU {}", device_);
  desc_.reset(desc);
  const int32_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;  // D = A^T B: W [kp, out] col-major, transposed
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof trans_a),
               "prefill matmul descriptor: TRANSA");
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b),
               "prefill matmul descriptor: TRANSB");
}

void PrefillGemm::select() const {
  check_cuda(cudaSetDevice(device_), "select GPU {}", device_);
}

void* PrefillGemm::workspace() {
  if (workspace_.empty())
    workspace_ = Buffer(allocator_, DType::kF32, Shape{static_cast<int64_t>(kWorkspaceBytes / 4)});
  return workspace_.tensor().data;
}

bool PrefillGemm::algo_runs(const Plan& plan, const cublasLtMatmulAlgo_t& algo, int64_t n) {
  const uint64_t cols = static_cast<uint64_t>(n);
  for (cublasLtMatrixLayout_t l : {plan.b.get(), plan.d.get()})
    CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols),
                 "matrix layout: {} columns", n);
  int32_t splits = 0;
  uint32_t scheme = 0;
  size_t written = 0;
  CUBLAS_CHECK(cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits, sizeof splits,
                                                    &written),
               "algorithm config: split-K");
  CUBLAS_CHECK(cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme,
                                                    sizeof scheme, &written),
               "algorithm config: reduction scheme");
  if (splits > 1 || scheme != CUBLASLT_REDUCTION_SCHEME_NONE) return false;
  cublasLtMatmulHeuristicResult_t result{};
  const cublasStatus_t status = cublasLtMatmulAlgoCheck(handle_.get(), desc_.get(), plan.a.get(), plan.b.get(),
                                                        plan.d.get(), plan.d.get(), &algo, &result);
  return status == CUBLAS_STATUS_SUCCESS && result.state == CUBLAS_STATUS_SUCCESS &&
         result.workspaceSize <= kWorkspaceBytes;
}

PrefillGemm::Plan& PrefillGemm::plan_for(const Problem& p) {
  const std::array<int64_t, 8> key = p.key();
  if (const auto it = plans_.find(key); it != plans_.end()) {
    Plan& plan = it->second;
    // The one algorithm of this weight problem at this call's n: it ran at the probe counts of the plan; a
    // count it cannot run is an error rather than another algorithm (whose rows would differ).
    if (plan.ok && !algo_runs(plan, plan.algo, p.n))
      fail("linear_prefill: cuBLASLt's algorithm for y [n, {}] f32 = x [n, {}] bf16 @ W^T does not run n = {}", p.m,
           p.k, p.n);
    return plan;
  }
  if (plans_.size() >= kMaxPlans) plans_.clear();  // many distinct weight problems: start over rather than grow

  Plan plan;
  const auto layout = [&](cudaDataType type, int64_t rows, int64_t cols, int64_t ld, const char* name) {
    cublasLtMatrixLayout_t l = nullptr;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld),
                 "matrix layout of {} ({} x {}, ld {})", name, rows, cols, ld);
    return LayoutPtr(l);
  };
  plan.a = layout(CUDA_R_16BF, p.k, p.m, p.lda, "W");          // column-major [k, m]; op(A) = A^T
  plan.b = layout(CUDA_R_16BF, p.k, kPlanRows, p.ldb, "x");    // column-major [k, n]
  plan.d = layout(CUDA_R_32F, p.m, kPlanRows, p.ldd, "y");     // column-major [m, n]; also C (beta = 0)

  cublasLtMatmulPreference_t raw = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&raw), "create a matmul preference");
  const PreferencePtr pref(raw);
  const uint64_t max_workspace = kWorkspaceBytes;
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(raw, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_workspace,
                                                    sizeof max_workspace),
               "matmul preference: workspace");
  // No split-K reduction: each output's dot product in one sequence, whatever n (see the header).
  const uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_NONE;
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(raw, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes,
                                                    sizeof schemes),
               "matmul preference: reduction scheme");
  // The alignments every call provides: the default (256 bytes) would let the heuristic pick a kernel that needs
  // more than a row-offset view of a weight has.
  const std::pair<cublasLtMatmulPreferenceAttributes_t, int64_t> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, p.align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, p.align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, p.align_d},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, p.align_d}};
  for (const auto& [attribute, bytes] : alignments) {
    const uint32_t v = static_cast<uint32_t>(bytes);
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(raw, attribute, &v, sizeof v), "matmul preference: alignment");
  }

  std::array<cublasLtMatmulHeuristicResult_t, 8> results{};
  int returned = 0;
  const cublasStatus_t status =
      cublasLtMatmulAlgoGetHeuristic(handle_.get(), desc_.get(), plan.a.get(), plan.b.get(), plan.d.get(),
                                     plan.d.get(), raw, static_cast<int>(results.size()), results.data(), &returned);
  if (status != CUBLAS_STATUS_NOT_SUPPORTED)  // NOT_SUPPORTED: no algorithm, the caller falls back
    CUBLAS_CHECK(status,
                 "algorithm heuristic for y [{}, {}] f32 = x [{}, {}] bf16 @ W^T [{}, {}] bf16 (ld {} / {} / {}, "
                 "alignment {} / {} / {} bytes)",
                 kPlanRows, p.m, kPlanRows, p.k, p.m, p.k, p.ldb, p.lda, p.ldd, p.align_b, p.align_a, p.align_d);
  // The first candidate (the heuristic's order) that runs, unsplit, every row count from one row to a long chunk.
  constexpr int64_t kProbeRows[] = {1, 3, 16, 17, 255, kPlanRows, 8 * kPlanRows};
  for (int i = 0; status == CUBLAS_STATUS_SUCCESS && i < returned && !plan.ok; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    bool runs = true;
    for (int64_t n : kProbeRows) runs = runs && algo_runs(plan, results[i].algo, n);
    if (runs) {
      plan.algo = results[i].algo;
      plan.ok = true;
    }
  }
  Plan& placed = plans_.emplace(key, std::move(plan)).first->second;
  if (placed.ok && !algo_runs(placed, placed.algo, p.n))
    fail("linear_prefill: cuBLASLt's algorithm for y [n, {}] f32 = x [n, {}] bf16 @ W^T does not run n = {}", p.m,
         p.k, p.n);
  return placed;
}

void PrefillGemm::matmul(const Plan& plan, const Problem& p, const void* a, const void* b, float* d, const char* op) {
  const float alpha = 1.0f, beta = 0.0f;
  void* ws = workspace();
  const cublasStatus_t status =
      cublasLtMatmul(handle_.get(), desc_.get(), &alpha, a, plan.a.get(), b, plan.b.get(), &beta, d, plan.d.get(), d,
                     plan.d.get(), &plan.algo, ws, kWorkspaceBytes, stream_);
  if (status != CUBLAS_STATUS_SUCCESS)
    CUBLAS_CHECK(status, "{}: cublasLtMatmul y [{}, {}] f32 = x [{}, {}] bf16 @ W^T [{}, {}] bf16", op, p.n, p.m, p.n,
                 p.k, p.m, p.k);
}

bool PrefillGemm::linear(const float* x, int64_t T, const DeviceLinear& w, float* y) {
  if ((w.elem != Elem::kBF16 && w.elem != Elem::kF8E4M3) || T <= 0 || w.out <= 0 || w.in <= 0) return false;
  select();
  const int64_t kp = round_up(w.in, 8);
  // Weight terms: 1 when every element is a bf16 value (bf16; fp8 whose scale is applied to the result), 2 for a
  // block-scaled fp8 element times its scale (hi + lo, like x).
  const int w_parts = w.elem == Elem::kF8E4M3 && w.quant == Quant::kFp8Block ? 2 : 1;
  const int64_t m = w_parts * w.out;
  // A bf16 weight whose rows are whole 16-byte columns is read in place; any other is converted (fp8: decoded).
  const bool in_place = w.elem == Elem::kBF16 && kp == w.in && column_alignment(w.weight, kp * 2) >= 16;
  auto* xb = static_cast<uint16_t*>(x_bf16_.get(static_cast<size_t>(2 * T * kp) * 2));  // [2T, kp]: hi, lo
  uint16_t* wb = nullptr;                                                                // [w_parts * out, kp]
  if (!in_place) wb = static_cast<uint16_t*>(w_bf16_.get(static_cast<size_t>(m * kp) * 2));
  const void* a = in_place ? w.weight : wb;
  // The plan's alignments follow from the weight alone (a 256-byte aligned base, its leading dimensions), so the
  // algorithm is the same whichever rows of which buffers a call reads and writes (see the header).
  const int64_t align_b = column_alignment(nullptr, kp * 2), align_d = column_alignment(nullptr, m * 4);
  TANDEM_CHECK(column_alignment(xb, kp * 2) >= align_b, "linear (prefill GEMM): x scratch at {} is not {}-byte aligned",
               static_cast<const void*>(xb), align_b);
  const Problem p{.m = m,
                  .n = 2 * T,
                  .k = kp,
                  .lda = kp,
                  .ldb = kp,
                  .ldd = m,
                  .align_a = column_alignment(a, kp * 2),
                  .align_b = align_b,
                  .align_d = align_d};
  const Plan& plan = plan_for(p);
  if (!plan.ok) return false;
  auto* d = static_cast<float*>(y_f32_.get(static_cast<size_t>(2 * T * m) * 4));  // [2T, m]: every x / W term

  check_cuda(to_bf16_split_rows(x, T, w.in, xb, kp, stream_),
             "linear (prefill GEMM): x F32 [{}, {}] to BF16 hi + lo [{}, {}]", T, w.in, 2 * T, kp);
  if (!in_place)
    check_cuda(weight_to_bf16(w, wb, kp, w_parts, stream_), "linear (prefill GEMM): weight {} [{}, {}] to BF16 [{}, {}]",
               elem_name(w.elem), w.out, w.in, m, kp);
  matmul(plan, p, a, xb, d, "linear (prefill GEMM)");
  check_cuda(prefill_epilogue(d, w_parts, y, T, w, stream_), "linear (prefill GEMM): sum, scale, bias of y F32 [{}, {}]",
             T, w.out);
  return true;
}

double PrefillGemm::measure_tflops(int64_t m, int64_t n, int64_t k) {
  TANDEM_CHECK(m > 0 && n > 0 && k > 0, "measure_gemm_tflops: m {}, n {}, k {} must be positive", m, n, k);
  select();
  const int64_t kp = round_up(k, 8);
  Buffer x(allocator_, DType::kBF16, Shape{m, kp});  // [m, kp]
  Buffer w(allocator_, DType::kBF16, Shape{n, kp});  // [n, kp]
  Buffer y(allocator_, DType::kF32, Shape{m, n});    // [m, n]
  check_cuda(fill_bf16_hash(x.ptr<uint16_t>(), m * kp, 1, stream_), "measure_gemm_tflops: fill x [{}, {}]", m, kp);
  check_cuda(fill_bf16_hash(w.ptr<uint16_t>(), n * kp, 2, stream_), "measure_gemm_tflops: fill W [{}, {}]", n, kp);
  const Problem p{.m = n,
                  .n = m,
                  .k = kp,
                  .lda = kp,
                  .ldb = kp,
                  .ldd = n,
                  .align_a = column_alignment(w.tensor().data, kp * 2),
                  .align_b = column_alignment(x.tensor().data, kp * 2),
                  .align_d = column_alignment(y.tensor().data, n * 4)};
  const Plan& plan = plan_for(p);
  if (!plan.ok) return std::numeric_limits<double>::quiet_NaN();

  // Rounds of `reps` products (about 1e12 FLOPs, ~1.5 ms on an H100) so launch gaps do not count; the best of 5.
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(kp);
  const int reps = static_cast<int>(std::clamp(std::ceil(1e12 / flops), 1.0, 1000.0));
  cudaEvent_t start = nullptr, stop = nullptr;
  check_cuda(cudaEventCreate(&start), "measure_gemm_tflops: event");
  check_cuda(cudaEventCreate(&stop), "measure_gemm_tflops: event");
  float best_ms = std::numeric_limits<float>::infinity();
  for (int round = 0; round < 6; ++round) {  // round 0 warms up (clocks, caches, the algorithm's first launch)
    check_cuda(cudaEventRecord(start, stream_), "measure_gemm_tflops: record");
    for (int r = 0; r < reps; ++r)
      matmul(plan, p, w.tensor().data, x.tensor().data, y.ptr<float>(), "measure_gemm_tflops");
    check_cuda(cudaEventRecord(stop, stream_), "measure_gemm_tflops: record");
    check_cuda(cudaEventSynchronize(stop), "measure_gemm_tflops {} x {} x {}", m, n, kp);
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, start, stop), "measure_gemm_tflops: elapsed time");
    if (round > 0) best_ms = std::min(best_ms, ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return flops * reps / (static_cast<double>(best_ms) * 1e-3) / 1e12;
}

}  // namespace tandem::ops::cuda
