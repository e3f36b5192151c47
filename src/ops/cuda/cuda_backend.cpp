// CudaBackend: the ops::Backend seam over the CUDA kernels (kernels.h). This file is host code: it checks
// every op's shapes and dtypes (errors name the op and the shapes), turns tensors into the kernels' POD
// descriptors, and enqueues on the backend's stream. Nothing here reads device memory except to_host().
#include "ops/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>
#include <vector>

#include "ops/cuda/cuda_allocator.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/kernels.h"
#include "ops/cuda/prefill_gemm.h"

namespace tandem::ops {

namespace {

using cuda::DeviceKv;
using cuda::DeviceLinear;
using cuda::DeviceStep;
using cuda::Elem;
using cuda::ExpertTable;
using cuda::Quant;

Elem elem_of(DType d, const char* op) {
  switch (d) {
    case DType::kF32: return Elem::kF32;
    case DType::kBF16: return Elem::kBF16;
    case DType::kF16: return Elem::kF16;
    case DType::kF8E4M3: return Elem::kF8E4M3;
    default: fail("{}: dtype {} is not a float type the CUDA kernels read", op, dtype_name(d));
  }
}

Quant quant_of(WeightQuant q) {
  switch (q) {
    case WeightQuant::kNone: return Quant::kNone;
    case WeightQuant::kFp8Tensor: return Quant::kFp8Tensor;
    case WeightQuant::kFp8Channel: return Quant::kFp8Channel;
    case WeightQuant::kFp8Block: return Quant::kFp8Block;
  }
  return Quant::kNone;
}

void check_f32(const Tensor& t, const char* op, const char* what) {
  TANDEM_CHECK(t.dtype == DType::kF32, "{}: {} is {} {}, expected F32", op, what, dtype_name(t.dtype), t.shape.str());
  TANDEM_CHECK(t.device.kind == DeviceKind::kCuda || t.empty(), "{}: {} {} is {} memory, not on the GPU", op, what,
               t.shape.str(), device_kind_name(t.device.kind));
}

void check_i32(const Tensor& t, const char* op, const char* what) {
  TANDEM_CHECK(t.dtype == DType::kI32, "{}: {} is {} {}, expected I32", op, what, dtype_name(t.dtype), t.shape.str());
  TANDEM_CHECK(t.device.kind == DeviceKind::kCuda || t.empty(), "{}: {} {} is {} memory, not on the GPU", op, what,
               t.shape.str(), device_kind_name(t.device.kind));
}

/// Columns of a [R, ...] tensor viewed as 2-D.
int64_t cols(const Tensor& t) { return t.numel() / std::max<int64_t>(t.dim(0), 1); }

DeviceLinear device_linear(const LinearWeight& w, const char* op) {
  TANDEM_CHECK(w.weight.device.kind == DeviceKind::kCuda,
               "{}: weight {} is not on the GPU (load it through CudaBackend::load_linear)", op, w.weight.shape.str());
  DeviceLinear d{.weight = w.weight.data,
                 .scale = w.scale.empty() ? nullptr : w.scale.ptr<const float>(),
                 .bias = w.bias.empty() ? nullptr : w.bias.ptr<const float>(),
                 .out = w.out_features(),
                 .in = w.in_features(),
                 .elem = elem_of(w.weight.dtype, op),
                 .quant = quant_of(w.quant),
                 .block_out = w.block_out,
                 .block_in = w.block_in,
                 .scale_cols = w.block_in > 0 ? (w.in_features() + w.block_in - 1) / w.block_in : 0};
  TANDEM_CHECK((d.elem == Elem::kF8E4M3) == (d.quant != Quant::kNone) && (d.quant == Quant::kNone || d.scale),
               "{}: weight {} {} with quantization {} and {} scale", op, dtype_name(w.weight.dtype),
               w.weight.shape.str(), static_cast<int>(w.quant), d.scale ? "a" : "no");
  TANDEM_CHECK(w.bias.empty() || w.bias.dtype == DType::kF32, "{}: bias must be F32 on the GPU (load_linear converts it)",
               op);
  TANDEM_CHECK(d.quant != Quant::kFp8Block || (d.block_out > 0 && d.block_in > 0), "{}: fp8 block size {}x{}", op,
               d.block_out, d.block_in);
  return d;
}

DeviceKv device_kv(const KvLayerView& kv, const char* op) {
  TANDEM_CHECK(kv.k && kv.v && kv.n_blocks > 0 && kv.block_size > 0 && kv.n_kv_heads > 0 && kv.head_dim > 0,
               "{}: incomplete KV view (n_blocks {}, block_size {}, n_kv_heads {}, head_dim {})", op, kv.n_blocks,
               kv.block_size, kv.n_kv_heads, kv.head_dim);
  TANDEM_CHECK(kv.dtype == DType::kF32 || kv.dtype == DType::kBF16 || kv.dtype == DType::kF8E4M3,
               "{}: KV cache dtype {} is not one of F32, BF16, F8_E4M3", op, dtype_name(kv.dtype));
  TANDEM_CHECK(kv.dtype != DType::kF8E4M3 || (kv.k_scale && kv.v_scale),
               "{}: an F8_E4M3 KV view needs k_scale and v_scale ([n_kv_heads] f32)", op);
  TANDEM_CHECK(kv.head_dim <= 256, "{}: head_dim {} > 256", op, kv.head_dim);
  return DeviceKv{.k = kv.k,
                  .v = kv.v,
                  .n_blocks = kv.n_blocks,
                  .block_size = kv.block_size,
                  .n_kv_heads = kv.n_kv_heads,
                  .head_dim = kv.head_dim,
                  .elem = elem_of(kv.dtype, op),
                  .k_scale = kv.k_scale,
                  .v_scale = kv.v_scale};
}

DeviceStep device_step(const StepState& s) {
  return DeviceStep{.positions = s.positions.ptr<const int32_t>(),
                    .seq_info = s.seq_info.ptr<const int32_t>(),
                    .block_tables = s.block_tables.ptr<const int32_t>(),
                    .n_tokens = s.n_tokens,
                    .n_seqs = s.n_seqs,
                    .max_blocks = s.max_blocks};
}

/// Device scratch that grows to the largest request and is reused: the backend's one stream orders every
/// use after the previous one, and a replaced buffer is freed stream-ordered, after the work that used it.
class GrowingScratch {
 public:
  explicit GrowingScratch(Allocator& a) : allocator_(a) {}
  void* get(size_t bytes) {
    if (bytes > buffer_.tensor().nbytes()) {
      buffer_ = Buffer();
      buffer_ = Buffer(allocator_, DType::kF32, Shape{static_cast<int64_t>((bytes + 3) / 4)});
    }
    return buffer_.tensor().data;
  }

 private:
  Allocator& allocator_;
  Buffer buffer_;
};

/// Rows per moe_experts launch (bounds its scratch; see moe_experts).
constexpr int64_t kMoeRowChunk = 512;

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index) : index_(index), name_(fmt::format("cuda:{}", index)) {
    CUDA_CHECK(cudaSetDevice(index_), "select GPU {}", index_);
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream on GPU {}", index_);
    allocator_ = std::make_unique<cuda::CudaAllocator>(index_, stream_);
    scratch_ = std::make_unique<GrowingScratch>(*allocator_);
    prefill_ = std::make_unique<cuda::PrefillGemm>(index_, *allocator_, stream_);
  }
  ~CudaBackend() override {
    expert_tables_.clear();
    scratch_.reset();
    cudaStreamSynchronize(stream_);
    prefill_.reset();  // after the stream's work: its cuBLASLt handle and buffers may be in use until then
    cudaStreamDestroy(stream_);
  }

  std::string_view name() const override { return name_; }
  Device device() const override { return allocator_->device(); }
  bool supports(WeightQuant) const override { return true; }  // every fp8 layout runs natively
  Allocator& allocator() override { return *allocator_; }

  size_t available_memory_bytes() override {
    select();
    size_t free_bytes = 0, total = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total), "memory info of GPU {}", index_);
    return free_bytes;
  }

  /// Device-to-device copies of 1 GiB, timed with events; the best of five after a warm-up.
  double measure_copy_bandwidth_gbs() override {
    select();
    const size_t bytes = size_t{1} << 30;
    Buffer a(*allocator_, DType::kF8E4M3, Shape{static_cast<int64_t>(bytes)});
    Buffer b(*allocator_, DType::kF8E4M3, Shape{static_cast<int64_t>(bytes)});
    cudaEvent_t start = nullptr, stop = nullptr;
    CUDA_CHECK(cudaEventCreate(&start), "copy probe event");
    CUDA_CHECK(cudaEventCreate(&stop), "copy probe event");
    float best_ms = 1e30f;
    for (int i = 0; i < 6; ++i) {
      CUDA_CHECK(cudaEventRecord(start, stream_), "copy probe");
      CUDA_CHECK(cudaMemcpyAsync(b.tensor().data, a.tensor().data, bytes, cudaMemcpyDeviceToDevice, stream_),
                 "copy probe of {} bytes", bytes);
      CUDA_CHECK(cudaEventRecord(stop, stream_), "copy probe");
      CUDA_CHECK(cudaEventSynchronize(stop), "copy probe");
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop), "copy probe");
      if (i > 0) best_ms = std::min(best_ms, ms);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return 2.0 * static_cast<double>(bytes) / (best_ms * 1e-3) / 1e9;
  }

  /// The prefill GEMM (cuBLASLt, bf16 operands) on hashed operands; see PrefillGemm::measure_tflops.
  double measure_gemm_tflops(int64_t m, int64_t n, int64_t k) override { return prefill_->measure_tflops(m, n, k); }

  void load_linear(LinearWeight& w, std::vector<Buffer>& owned) override {
    move_to_device(w.weight, owned);
    move_to_device(w.scale, owned);
    if (!w.bias.empty() && w.bias.dtype != DType::kF32) {
      Buffer f32(DType::kF32, w.bias.shape);  // host: the kernels add an f32 bias
      for (int64_t i = 0; i < w.bias.numel(); ++i) {
        const uint16_t v = w.bias.ptr<const uint16_t>()[i];
        f32.ptr<float>()[i] = w.bias.dtype == DType::kBF16 ? bf16_to_f32(v) : f16_to_f32(v);
      }
      w.bias = f32.view();
      owned.push_back(std::move(f32));
    }
    move_to_device(w.bias, owned);
  }
  void load_weight(Tensor& t, std::vector<Buffer>& owned) override { move_to_device(t, owned); }

  void upload(const void* src, const Tensor& dst) override {
    if (dst.nbytes() == 0) return;
    select();
    CUDA_CHECK(cudaMemcpyAsync(dst.data, src, dst.nbytes(), cudaMemcpyHostToDevice, stream_), "upload {} {}",
               dtype_name(dst.dtype), dst.shape.str());
  }
  void to_host(const Tensor& src, void* dst) override {
    select();
    if (src.nbytes() > 0)
      CUDA_CHECK(cudaMemcpyAsync(dst, src.data, src.nbytes(), cudaMemcpyDeviceToHost, stream_), "to_host {} {}",
                 dtype_name(src.dtype), src.shape.str());
    CUDA_CHECK(cudaStreamSynchronize(stream_), "to_host {} {} (an earlier kernel on this stream may have failed)",
               dtype_name(src.dtype), src.shape.str());
  }
  void fill_zero(const Tensor& t) override {
    if (t.nbytes() == 0) return;
    select();
    CUDA_CHECK(cudaMemsetAsync(t.data, 0, t.nbytes(), stream_), "fill_zero {}", t.shape.str());
  }
  void fill_random(const Tensor& t, uint64_t seed, float lo, float hi) override {
    TANDEM_CHECK(t.empty() || t.device.kind == DeviceKind::kCuda, "fill_random: {} {} is {} memory, not on the GPU",
                 dtype_name(t.dtype), t.shape.str(), device_kind_name(t.device.kind));
    TANDEM_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, "fill_random: range [{}, {}) of {} {}", lo, hi,
                 dtype_name(t.dtype), t.shape.str());
    const Elem elem = elem_of(t.dtype, "fill_random");
    if (t.nbytes() == 0) return;
    select();
    launch(cuda::fill_random(t.data, elem, t.numel(), seed, lo, hi, stream_), "fill_random", t, t);
  }
  void copy_cols(const Tensor& src, int64_t src_col, const Tensor& dst, int64_t dst_col, int64_t n_cols) override {
    check_f32(src, "copy_cols", "src");
    check_f32(dst, "copy_cols", "dst");
    const int64_t R = src.dim(0), a = cols(src), b = cols(dst);
    TANDEM_CHECK(dst.dim(0) == R && src_col >= 0 && dst_col >= 0 && src_col + n_cols <= a && dst_col + n_cols <= b,
                 "copy_cols: src {} cols [{}, +{}) -> dst {} col {}", src.shape.str(), src_col, n_cols,
                 dst.shape.str(), dst_col);
    launch(cuda::copy_cols(src.ptr<const float>(), a, src_col, dst.ptr<float>(), b, dst_col, R, n_cols, stream_),
           "copy_cols", src, dst);
  }
  void gather_rows(const Tensor& src, const Tensor& rows, const Tensor& dst) override {
    check_i32(rows, "gather_rows", "rows");
    const int64_t n = cols(src), R = rows.numel();
    TANDEM_CHECK(src.dtype == dst.dtype && dtype_size(src.dtype) == 4 && dst.dim(0) == R && dst.numel() == n * R,
                 "gather_rows: {} rows of {} into {}", R, src.shape.str(), dst.shape.str());
    launch(cuda::gather_rows(src.data, rows.ptr<const int32_t>(), dst.data, R, n * 4, stream_), "gather_rows", src,
           dst);
  }
  void copy_rows(const Tensor& src, const Tensor& src_rows, const Tensor& dst, const Tensor& dst_rows) override {
    check_i32(src_rows, "copy_rows", "src_rows");
    check_i32(dst_rows, "copy_rows", "dst_rows");
    const int64_t n = cols(src), R = src_rows.numel();
    TANDEM_CHECK(src.dtype == dst.dtype && dtype_size(src.dtype) == 4 && dst_rows.numel() == R && cols(dst) == n,
                 "copy_rows: {} rows of {} into {}", R, src.shape.str(), dst.shape.str());
    launch(cuda::copy_rows(src.data, src_rows.ptr<const int32_t>(), dst.data, dst_rows.ptr<const int32_t>(), R,
                           n * 4, stream_),
           "copy_rows", src, dst);
  }

  /// The GEMV at every T: f32 x, each output's reduction in an order fixed by `in` alone (exact, ops.h).
  void linear(const Tensor& x, const LinearWeight& w, const Tensor& y) override {
    const DeviceLinear d = linear_args(x, w, y, "linear");
    if (x.dim(0) == 0) return;
    launch(cuda::linear(x.ptr<const float>(), x.dim(0), d, y.ptr<float>(), stream_), "linear", x, y, &w.weight);
  }
  /// A bf16 / fp8 weight goes through the cuBLASLt GEMM at every T (prefill_gemm.h: one algorithm per weight
  /// shape, so a row's bits do not depend on T); f16 / f32 weights and shapes cuBLASLt has no algorithm for run
  /// the GEMV, also at every T.
  void linear_prefill(const Tensor& x, const LinearWeight& w, const Tensor& y) override {
    const DeviceLinear d = linear_args(x, w, y, "linear_prefill");
    if (x.dim(0) == 0) return;
    if (prefill_->linear(x.ptr<const float>(), x.dim(0), d, y.ptr<float>())) return;
    launch(cuda::linear(x.ptr<const float>(), x.dim(0), d, y.ptr<float>(), stream_), "linear_prefill", x, y,
           &w.weight);
  }
  bool prefill_linear_differs() const override { return true; }

  void embedding(const Tensor& ids, const Tensor& table, const Tensor& out) override {
    check_i32(ids, "embedding", "ids");
    check_f32(out, "embedding", "out");
    const int64_t n = ids.numel(), V = table.dim(0), H = cols(table);
    TANDEM_CHECK(table.device.kind == DeviceKind::kCuda, "embedding: table {} is not on the GPU", table.shape.str());
    TANDEM_CHECK(out.dim(0) == n && cols(out) == H, "embedding: {} ids of table {} into {}", n, table.shape.str(),
                 out.shape.str());
    if (n == 0) return;
    launch(cuda::embedding(ids.ptr<const int32_t>(), n, table.data, elem_of(table.dtype, "embedding"), V, H,
                           out.ptr<float>(), stream_),
           "embedding", table, out);
  }
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, bool unit_offset, const Tensor& out) override {
    check_f32(x, "rms_norm", "x");
    check_f32(out, "rms_norm", "out");
    const int64_t D = weight.numel(), R = x.numel() / std::max<int64_t>(D, 1);
    TANDEM_CHECK(weight.device.kind == DeviceKind::kCuda, "rms_norm: weight {} is not on the GPU",
                 weight.shape.str());
    TANDEM_CHECK(D > 0 && x.numel() == R * D && out.numel() == x.numel(), "rms_norm: x {} weight {} out {}",
                 x.shape.str(), weight.shape.str(), out.shape.str());
    if (R == 0) return;
    launch(cuda::rms_norm(x.ptr<const float>(), weight.data, elem_of(weight.dtype, "rms_norm"), eps, unit_offset,
                          out.ptr<float>(), R, D, stream_),
           "rms_norm", x, out);
  }
  void rope_neox(const Tensor& x, const Tensor& positions, int rot_dim, float theta) override {
    check_f32(x, "rope_neox", "x");
    check_i32(positions, "rope_neox", "positions");
    TANDEM_CHECK(x.rank() == 3 && positions.numel() == x.dim(0) && rot_dim > 0 && rot_dim % 2 == 0 &&
                     rot_dim <= x.dim(2),
                 "rope_neox: x {} positions {} rot_dim {}", x.shape.str(), positions.shape.str(), rot_dim);
    if (x.dim(0) == 0) return;
    launch(cuda::rope_neox(x.ptr<float>(), positions.ptr<const int32_t>(), x.dim(0), x.dim(1), x.dim(2), rot_dim,
                           theta, stream_),
           "rope_neox", x, x);
  }
  void kv_store(const Tensor& k, const Tensor& v, const KvLayerView& kv, const StepState& step) override {
    check_f32(k, "kv_store", "k");
    check_f32(v, "kv_store", "v");
    const DeviceKv d = device_kv(kv, "kv_store");
    const int64_t row = int64_t{kv.n_kv_heads} * kv.head_dim;
    TANDEM_CHECK(k.dim(0) == step.n_tokens && k.numel() == step.n_tokens * row && v.numel() == k.numel(),
                 "kv_store: k {} v {} for {} rows of {} kv heads x {}", k.shape.str(), v.shape.str(), step.n_tokens,
                 kv.n_kv_heads, kv.head_dim);
    if (step.n_tokens == 0) return;
    launch(cuda::kv_store(k.ptr<const float>(), v.ptr<const float>(), d, device_step(step), stream_), "kv_store", k,
           v);
  }
  void attention(const Tensor& q, const KvLayerView& kv, const StepState& step, float scale,
                 const Tensor& out) override {
    check_f32(q, "attention", "q");
    check_f32(out, "attention", "out");
    const DeviceKv d = device_kv(kv, "attention");
    TANDEM_CHECK(q.rank() == 3 && q.dim(0) == step.n_tokens && q.dim(2) == kv.head_dim &&
                     q.dim(1) % kv.n_kv_heads == 0 && out.numel() == q.numel(),
                 "attention: q {} out {} over {} kv heads x {}, {} rows", q.shape.str(), out.shape.str(),
                 kv.n_kv_heads, kv.head_dim, step.n_tokens);
    if (step.n_tokens == 0) return;
    const int Hq = static_cast<int>(q.dim(1));
    const DeviceStep s = device_step(step);
    const size_t bytes = cuda::attention_scratch_bytes(q.dim(0), Hq, kv.head_dim, s, d);
    void* scratch = bytes > 0 ? scratch_->get(bytes) : nullptr;
    launch(cuda::attention(q.ptr<const float>(), q.dim(0), Hq, d, s, scale, out.ptr<float>(), scratch, stream_),
           "attention", q, out);
  }
  void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out) override {
    check_f32(gate, "silu_mul", "gate");
    check_f32(up, "silu_mul", "up");
    check_f32(out, "silu_mul", "out");
    TANDEM_CHECK(gate.numel() == up.numel() && out.numel() == gate.numel(), "silu_mul: gate {} up {} out {}",
                 gate.shape.str(), up.shape.str(), out.shape.str());
    launch(cuda::silu_mul(gate.ptr<const float>(), up.ptr<const float>(), out.ptr<float>(), gate.numel(), stream_),
           "silu_mul", gate, out);
  }
  void add(const Tensor& a, const Tensor& b, const Tensor& out) override {
    check_f32(a, "add", "a");
    check_f32(b, "add", "b");
    check_f32(out, "add", "out");
    TANDEM_CHECK(a.numel() == b.numel() && out.numel() == a.numel(), "add: a {} b {} out {}", a.shape.str(),
                 b.shape.str(), out.shape.str());
    launch(cuda::add(a.ptr<const float>(), b.ptr<const float>(), out.ptr<float>(), a.numel(), stream_), "add", a,
           out);
  }
  void mul_sigmoid(const Tensor& x, const Tensor& gate, const Tensor& out) override {
    check_f32(x, "mul_sigmoid", "x");
    check_f32(gate, "mul_sigmoid", "gate");
    check_f32(out, "mul_sigmoid", "out");
    const int64_t R = x.dim(0), n = cols(x), gn = cols(gate);
    TANDEM_CHECK(gate.dim(0) == R && (gn == n || gn == 1) && out.numel() == x.numel(), "mul_sigmoid: x {} gate {} out {}",
                 x.shape.str(), gate.shape.str(), out.shape.str());
    launch(cuda::mul_sigmoid(x.ptr<const float>(), gate.ptr<const float>(), gn, out.ptr<float>(), R, n, stream_),
           "mul_sigmoid", x, out);
  }
  void moe_route(const Tensor& logits, const Tensor& correction_bias, const MoeRouting& r, const Tensor& topk_ids,
                 const Tensor& topk_weights) override {
    check_f32(logits, "moe_route", "logits");
    check_i32(topk_ids, "moe_route", "topk_ids");
    check_f32(topk_weights, "moe_route", "topk_weights");
    const int64_t T = logits.dim(0), E = cols(logits);
    TANDEM_CHECK(r.top_k > 0 && r.top_k <= E && r.n_group > 0 && E % r.n_group == 0 && r.topk_group > 0 &&
                     r.topk_group <= r.n_group && topk_ids.numel() == T * r.top_k &&
                     topk_weights.numel() == T * r.top_k && E <= 1024,
                 "moe_route: logits {} top_k {} n_group {} topk_group {} -> ids {} weights {}", logits.shape.str(),
                 r.top_k, r.n_group, r.topk_group, topk_ids.shape.str(), topk_weights.shape.str());
    TANDEM_CHECK(correction_bias.empty() || (correction_bias.dtype == DType::kF32 && correction_bias.numel() == E &&
                                             correction_bias.device.kind == DeviceKind::kCuda),
                 "moe_route: correction bias {} {} for {} experts", dtype_name(correction_bias.dtype),
                 correction_bias.shape.str(), E);
    if (T == 0) return;
    launch(cuda::moe_route(logits.ptr<const float>(), T, static_cast<int>(E),
                           correction_bias.empty() ? nullptr : correction_bias.ptr<const float>(), r.top_k, r.n_group,
                           r.topk_group, r.norm_topk_prob, r.routed_scaling_factor,
                           r.scoring == MoeScoring::kSigmoid ? 0 : 1, topk_ids.ptr<int32_t>(),
                           topk_weights.ptr<float>(), stream_),
           "moe_route", logits, topk_weights);
  }
  void moe_experts(const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                   std::span<const MlpWeights> experts, const MlpWeights* shared, const Tensor& out) override {
    check_f32(x, "moe_experts", "x");
    check_i32(topk_ids, "moe_experts", "topk_ids");
    check_f32(topk_weights, "moe_experts", "topk_weights");
    check_f32(out, "moe_experts", "out");
    const int64_t T = x.dim(0), H = cols(x);
    const int K = static_cast<int>(topk_ids.numel() / std::max<int64_t>(T, 1));
    TANDEM_CHECK(!experts.empty() && topk_ids.numel() == T * K && topk_weights.numel() == T * K &&
                     out.numel() == x.numel(),
                 "moe_experts: x {} ids {} weights {} out {} over {} experts", x.shape.str(), topk_ids.shape.str(),
                 topk_weights.shape.str(), out.shape.str(), experts.size());
    if (T == 0) return;
    const ExpertTable& table = expert_table(experts);
    TANDEM_CHECK(table.hidden == H, "moe_experts: x {} for experts of hidden size {}", x.shape.str(), table.hidden);
    DeviceLinear sg, su, sd;
    if (shared) {
      sg = device_linear(shared->gate_proj, "moe_experts (shared gate_proj)");
      su = device_linear(shared->up_proj, "moe_experts (shared up_proj)");
      sd = device_linear(shared->down_proj, "moe_experts (shared down_proj)");
      TANDEM_CHECK(sg.in == H && su.in == H && sd.out == H && su.out == sg.out && sd.in == sg.out,
                   "moe_experts: shared expert {} / {} / {} for hidden size {}", shared->gate_proj.weight.shape.str(),
                   shared->up_proj.weight.shape.str(), shared->down_proj.weight.shape.str(), H);
    }
    // Rows in chunks of kMoeRowChunk: the intermediates need T * K * (I + H) floats, gigabytes for a long prefill
    // of a large model. Each row's result does not depend on the others in the call (kernels.h), so chunking
    // changes nothing but the scratch size.
    const size_t bytes = cuda::moe_experts_scratch_bytes(std::min(T, kMoeRowChunk), K, table, shared ? sg.out : 0);
    void* scratch = bytes > 0 ? scratch_->get(bytes) : nullptr;
    const int64_t row = H;  // floats per row of x and out; K per row of ids and weights
    for (int64_t t0 = 0; t0 < T; t0 += kMoeRowChunk) {
      const int64_t n = std::min(kMoeRowChunk, T - t0);
      launch(cuda::moe_experts(x.ptr<const float>() + t0 * row, n, topk_ids.ptr<const int32_t>() + t0 * K,
                               topk_weights.ptr<const float>() + t0 * K, K, table, shared ? &sg : nullptr,
                               shared ? &su : nullptr, shared ? &sd : nullptr, out.ptr<float>() + t0 * row, scratch,
                               stream_),
             "moe_experts", x, out);
    }
  }
  void argmax_rows(const Tensor& logits, const Tensor& ids) override {
    check_f32(logits, "argmax_rows", "logits");
    check_i32(ids, "argmax_rows", "ids");
    const int64_t R = logits.dim(0), V = cols(logits);
    TANDEM_CHECK(ids.numel() == R && V > 0, "argmax_rows: logits {} ids {}", logits.shape.str(), ids.shape.str());
    if (R == 0) return;
    launch(cuda::argmax_rows(logits.ptr<const float>(), R, V, ids.ptr<int32_t>(), stream_), "argmax_rows", logits,
           ids);
  }

 private:
  void select() { CUDA_CHECK(cudaSetDevice(index_), "select GPU {}", index_); }

  /// linear()'s and linear_prefill()'s checks: f32 x [T, in] and y [T, out] on the GPU, W [out, in] loaded.
  DeviceLinear linear_args(const Tensor& x, const LinearWeight& w, const Tensor& y, const char* op) {
    check_f32(x, op, "x");
    check_f32(y, op, "y");
    const DeviceLinear d = device_linear(w, op);
    TANDEM_CHECK(cols(x) == d.in && y.dim(0) == x.dim(0) && cols(y) == d.out, "{}: x {} @ W^T {} -> y {}", op,
                 x.shape.str(), w.weight.shape.str(), y.shape.str());
    return d;
  }

  /// Checks a launcher's status, naming the op and its shapes.
  void launch(cudaError_t status, const char* op, const Tensor& in, const Tensor& out, const Tensor* w = nullptr) {
    if (status == cudaSuccess) return;
    fail("CUDA: {} on {} {} -> {} {}{}: {}: {}", op, dtype_name(in.dtype), in.shape.str(), dtype_name(out.dtype),
         out.shape.str(), w ? fmt::format(" (weight {} {})", dtype_name(w->dtype), w->shape.str()) : std::string(),
         cudaGetErrorName(status), cudaGetErrorString(status));
  }

  /// Replaces a host tensor by a device copy (kept in `owned`); a host buffer in `owned` that held it is freed.
  void move_to_device(Tensor& t, std::vector<Buffer>& owned) {
    if (t.empty() || t.device.kind == DeviceKind::kCuda) return;
    Buffer d(*allocator_, t.dtype, t.shape);
    upload(t.data, d.tensor());
    // The copy must be complete before a host buffer it came from is released.
    CUDA_CHECK(cudaStreamSynchronize(stream_), "upload weight {} {}", dtype_name(t.dtype), t.shape.str());
    const void* host = t.data;
    std::erase_if(owned, [host](const Buffer& b) { return b.tensor().data == host; });
    t = d.view();
    owned.push_back(std::move(d));
  }

  /// The device table of a layer's routed experts, built at first use and cached by the experts' address. A
  /// hit is checked against the first and last experts' descriptors, so experts freed and reloaded at the same
  /// address (another model, a test) get a fresh table instead of one describing freed weights.
  const ExpertTable& expert_table(std::span<const MlpWeights> experts) {
    const auto key = std::make_tuple(static_cast<const void*>(experts.data()), experts.size(),
                                     static_cast<const void*>(experts[0].gate_proj.weight.data));
    const auto same = [](const DeviceLinear& a, const DeviceLinear& b) { return std::memcmp(&a, &b, sizeof a) == 0; };
    const auto ends = [&](const MlpWeights& m) {
      return std::array<DeviceLinear, 3>{device_linear(m.gate_proj, "moe_experts (gate_proj)"),
                                         device_linear(m.up_proj, "moe_experts (up_proj)"),
                                         device_linear(m.down_proj, "moe_experts (down_proj)")};
    };
    const std::array<DeviceLinear, 3> first = ends(experts.front()), last = ends(experts.back());
    auto it = expert_tables_.find(key);
    if (it != expert_tables_.end()) {
      bool hit = true;
      for (int i = 0; i < 3; ++i) hit = hit && same(it->second.first[i], first[i]) && same(it->second.last[i], last[i]);
      if (hit) return it->second.table;
      expert_tables_.erase(it);
    }
    const int64_t E = static_cast<int64_t>(experts.size());
    std::vector<DeviceLinear> gate(E), up(E), down(E);
    for (int64_t e = 0; e < E; ++e) {
      gate[e] = device_linear(experts[e].gate_proj, "moe_experts (gate_proj)");
      up[e] = device_linear(experts[e].up_proj, "moe_experts (up_proj)");
      down[e] = device_linear(experts[e].down_proj, "moe_experts (down_proj)");
      TANDEM_CHECK(gate[e].elem == gate[0].elem && gate[e].quant == gate[0].quant && gate[e].out == gate[0].out &&
                       gate[e].in == gate[0].in && up[e].out == gate[0].out && down[e].in == gate[0].out &&
                       down[e].out == gate[0].in,
                   "moe_experts: expert {} ({} {}) differs in type or shape from expert 0 ({} {})", e,
                   dtype_name(experts[e].gate_proj.weight.dtype), experts[e].gate_proj.weight.shape.str(),
                   dtype_name(experts[0].gate_proj.weight.dtype), experts[0].gate_proj.weight.shape.str());
    }
    ExpertEntry entry{.first = first, .last = last};
    for (auto* v : {&gate, &up, &down}) {  // [E] DeviceLinear, as bytes
      Buffer b(*allocator_, DType::kF8E4M3, Shape{static_cast<int64_t>(E * sizeof(DeviceLinear))});
      upload(v->data(), b.tensor());
      entry.arrays.push_back(std::move(b));
    }
    CUDA_CHECK(cudaStreamSynchronize(stream_), "upload expert table of {} experts", E);
    entry.table = ExpertTable{.gate = static_cast<const DeviceLinear*>(entry.arrays[0].tensor().data),
                              .up = static_cast<const DeviceLinear*>(entry.arrays[1].tensor().data),
                              .down = static_cast<const DeviceLinear*>(entry.arrays[2].tensor().data),
                              .n_experts = static_cast<int>(E),
                              .hidden = gate[0].in,
                              .intermediate = gate[0].out,
                              .elem = gate[0].elem,
                              .quant = gate[0].quant};
    return expert_tables_.emplace(key, std::move(entry)).first->second.table;
  }

  struct ExpertEntry {
    std::array<DeviceLinear, 3> first, last;  // gate, up, down of experts 0 and E-1 when the table was built
    std::vector<Buffer> arrays;               // gate, up, down: [E] DeviceLinear each (device)
    ExpertTable table;
  };

  int index_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::CudaAllocator> allocator_;
  std::unique_ptr<GrowingScratch> scratch_;
  std::unique_ptr<cuda::PrefillGemm> prefill_;  // the prefill linears' cuBLASLt handle, plans and scratch
  std::map<std::tuple<const void*, size_t, const void*>, ExpertEntry> expert_tables_;
};

}  // namespace

int cuda_device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why) *why = fmt::format("no CUDA device: {} ({})", cudaGetErrorName(e), cudaGetErrorString(e));
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device on this machine";
  return n;
}

std::unique_ptr<Backend> make_cuda_backend(int index, int /*n_threads*/) {
  std::string why;
  const int n = cuda_device_count(&why);
  TANDEM_CHECK(n > 0, "--device cuda: {}", why);
  TANDEM_CHECK(index >= 0 && index < n, "--device cuda:{}: this machine has {} CUDA device(s)", index, n);
  return std::make_unique<CudaBackend>(index);
}

}  // namespace tandem::ops
