// The prefill path of CudaBackend::linear_prefill: prefill rows of a bf16 or fp8 weight run as one bf16 tensor-core
// GEMM through cuBLASLt instead of the GEMV kernel, which re-reads the weight for every 8 rows.
//
//   x [T, in] f32 --to_bf16_split_rows--> xb [2T, kp] bf16   hi rows, then lo rows: x = hi + lo (kp = in rounded
//                                                              up to 8: 16-byte columns, zero tail)
//   W [out, in] bf16 with in == kp, 16-byte aligned: read in place (one term)
//   W otherwise --weight_to_bf16--> wb [P * out, kp] bf16 (scratch): fp8 tensor / channel and bf16: P = 1, exact;
//                                                              fp8 block (value x its scale): P = 2 terms, hi + lo
//   d [2T, P * out] f32 = xb @ wb^T                           cublasLtMatmul: bf16 x bf16 -> f32, compute 32F
//   y = (sum of d's terms, smallest first) * scale + bias       prefill_epilogue
//
// Layouts: cuBLASLt is column-major. Row-major W [out, kp] is column-major [kp, out], row-major xb [T, kp] is
// column-major [kp, T] and row-major y [T, out] is column-major [out, T]. So y^T = W xb^T is the "TN" product
// D[m, n] = op(A)[m, k] B[k, n] with A = W (transposed, ld kp), B = xb (ld kp), D = y (ld out), m = out, n = T,
// k = kp; both operands are K-major, the layout Hopper's tensor cores read directly.
//
// Precision (the contract of ops.h's Backend::linear_prefill): bf16 weights and fp8 weights with a tensor or
// channel scale enter the GEMM exactly (an e4m3 value is a bf16 value; the scale is applied to the f32 result); x
// enters as two bf16 terms (16 significant bits: relative error <= 2^-16 per element, where one bf16 would give
// 2^-8 and move the golden tests' logits by ~0.04), and so does a block-scaled fp8 element times its scale.
// Products of bf16 values are exact and accumulate in f32. The cost: the GEMM runs 2T (fp8 block: 2T x 2 out)
// rows, twice (four times) a one-term GEMM's FLOPs, still far above the GEMV's rate for prefill.
//
// Rows independent of T (ops.h: a prompt's rows must not depend on how it is chunked): cuBLASLt's heuristic picks
// its kernel (tile, split-K, stages, cluster) per problem, n = T included, and split-K / stream-K reductions sum a
// dot product in an order that follows the grid. So the algorithm is chosen once per weight problem (out, kp, its
// leading dimension and alignment), for kPlanRows rows, with the reduction scheme restricted to NONE ("dot-product
// shall be performed in one sequence", cublasLt.h) and split-K 1, and reused for every T; the operands' alignments
// the plan assumes depend on the weight shape alone (xb is a 256-byte aligned scratch buffer; a y view less aligned
// than its shape allows is computed into a scratch buffer and copied). cuBLASLt documents bitwise reproducibility
// only run to run (same algorithm, problem, GPU, toolkit); that a fixed non-split algorithm gives a column of D
// the same bits for any n is how tiled GEMM kernels work (each output's reduction over k runs in one CTA in k
// order) but not a documented guarantee, so backend_ops_test checks it on the GPU (LinearPrefillRowsIgnoreT).
//
// Resources, per backend (per GPU): one cuBLASLt handle; one matmul descriptor (TN, compute 32F, scale f32); a
// plan per weight problem (layouts and the algorithm; the cache is cleared when it reaches kMaxPlans); a
// kWorkspaceBytes cuBLASLt workspace and scratch buffers (xb; wb, as large as the largest weight converted; y when
// a view is under-aligned) from the backend's allocator, all on the backend's stream, grown on demand and kept.
#pragma once

#include <cublasLt.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>

#include "ops/cuda/kernels.h"
#include "tensor/tensor.h"

namespace tandem::ops::cuda {

class PrefillGemm {
 public:
  /// For the GPU `device` (made current on every call) and its backend's allocator and stream.
  PrefillGemm(int device, Allocator& allocator, cudaStream_t stream);
  /// Frees its buffers stream-ordered: destroy it before the stream.
  ~PrefillGemm() = default;
  PrefillGemm(const PrefillGemm&) = delete;
  PrefillGemm& operator=(const PrefillGemm&) = delete;

  /// y[T, out] = x[T, in] @ W^T (+ bias) as above, enqueued on the stream. x [T, in], y [T, out] f32 (device).
  /// Returns false, having enqueued nothing, when W is neither bf16 nor fp8 or cuBLASLt has no algorithm for
  /// the problem (the caller then runs its own kernel); throws tandem::Error naming the shapes when a CUDA or
  /// cuBLASLt call fails.
  [[nodiscard]] bool linear(const float* x, int64_t T, const DeviceLinear& w, float* y);

  /// Backend::measure_gemm_tflops: the TFLOP/s of this GEMM for m rows of x, n outputs and k inputs (k rounded
  /// up to 8), on hashed bf16 operands; best of 5 timed rounds after a warm-up. NaN when cuBLASLt has no
  /// algorithm for the problem.
  double measure_tflops(int64_t m, int64_t n, int64_t k);

  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLAS's default workspace on Hopper
  static constexpr size_t kMaxPlans = 4096;
  /// The row count the algorithm of a weight problem is chosen for (a typical prefill chunk), then used at every T.
  static constexpr int64_t kPlanRows = 2048;

 private:
  /// unique_ptr deleters for cuBLASLt's handle types (destroy functions return a status, ignored on teardown).
  template <class Handle, cublasStatus_t (*kDestroy)(Handle)>
  struct LtDeleter {
    void operator()(std::remove_pointer_t<Handle>* p) const { kDestroy(p); }
  };
  template <class Handle, cublasStatus_t (*kDestroy)(Handle)>
  using LtPtr = std::unique_ptr<std::remove_pointer_t<Handle>, LtDeleter<Handle, kDestroy>>;
  using HandlePtr = LtPtr<cublasLtHandle_t, cublasLtDestroy>;
  using DescPtr = LtPtr<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>;
  using LayoutPtr = LtPtr<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>;
  using PreferencePtr = LtPtr<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>;

  /// One cuBLASLt problem: D[m, n] = op(A)[m, k] B[k, n], with each operand's leading dimension (elements) and
  /// the alignment in bytes that every one of its columns has. The plan is keyed by everything but n.
  struct Problem {
    int64_t m = 0, n = 0, k = 0;
    int64_t lda = 0, ldb = 0, ldd = 0;
    int64_t align_a = 0, align_b = 0, align_d = 0;
    std::array<int64_t, 8> key() const { return {m, k, lda, ldb, ldd, align_a, align_b, align_d}; }
  };
  /// Layouts and the algorithm of one Problem for any n; ok == false: cuBLASLt has none (the caller falls back,
  /// for every n alike). b and d are re-sized to each call's n.
  struct Plan {
    LayoutPtr a, b, d;
    cublasLtMatmulAlgo_t algo{};
    bool ok = false;
  };
  /// A device buffer that grows to the largest request and is reused: the one stream orders every use after
  /// the previous one, and a replaced buffer is freed stream-ordered, after the work that used it.
  class Scratch {
   public:
    explicit Scratch(Allocator& a) : allocator_(a) {}
    void* get(size_t bytes);

   private:
    Allocator& allocator_;
    Buffer buffer_;
  };

  /// The cached plan of `p`'s weight problem (built on first use), its b and d layouts set to p.n columns. The
  /// reference is valid until the next plan_for() call.
  Plan& plan_for(const Problem& p);
  /// Whether `algo` runs p.n columns with no split-K and within kWorkspaceBytes (cublasLtMatmulAlgoCheck).
  bool algo_runs(const Plan& plan, const cublasLtMatmulAlgo_t& algo, int64_t n);
  /// Enqueues D = op(A) B for a planned problem; errors name `op` and the problem's shapes.
  void matmul(const Plan& plan, const Problem& p, const void* a, const void* b, float* d, const char* op);
  void* workspace();
  void select() const;

  int device_;
  Allocator& allocator_;
  cudaStream_t stream_;
  HandlePtr handle_;
  DescPtr desc_;  // TN, compute 32F, scale f32; shared by every problem
  std::map<std::array<int64_t, 8>, Plan> plans_;
  Buffer workspace_;  // kWorkspaceBytes, allocated at the first GEMM
  Scratch x_bf16_;    // xb [2T, kp] bf16: hi rows, lo rows
  Scratch w_bf16_;    // wb [P * out, kp] bf16
  Scratch y_f32_;     // d [2T, P * out] f32: the GEMM of every x / W term, before the epilogue sums them
};

}  // namespace tandem::ops::cuda
