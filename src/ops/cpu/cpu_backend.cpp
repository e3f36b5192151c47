// The CPU Backend: owns a thread pool, picks the ISA's kernels once, forwards each op to its family file.
#include "ops/cpu/cpu_backend.h"

#include <cstring>
#include <string>
#include <vector>

#include "core/log.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/probe.h"

namespace tandem::ops {
namespace cpu {
namespace {

std::span<const int32_t> host_span(const Tensor& ids) {
  TANDEM_CHECK(ids.dtype == DType::kI32 && ids.rank() == 1, "expected [n] i32 ids, got {}", ids.shape.str());
  return {ids.ptr<int32_t>(), static_cast<size_t>(ids.numel())};
}

/// The step's sequences as host slices (StepState lives in host memory on this backend).
std::vector<SeqSlice> host_slices(const StepState& st) {
  std::vector<SeqSlice> out(static_cast<size_t>(st.n_seqs));
  const int32_t* info = st.seq_info.ptr<int32_t>();
  for (int64_t i = 0; i < st.n_seqs; ++i)
    out[i] = SeqSlice{.token_begin = info[i * kSeqInfoCols + kSeqTokenBegin],
                      .n_tokens = info[i * kSeqInfoCols + kSeqNumTokens],
                      .start_pos = info[i * kSeqInfoCols + kSeqStartPos],
                      .block_table = st.block_tables.ptr<int32_t>() + i * st.max_blocks};
  return out;
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(Isa isa, int n_threads)
      : pool_(n_threads), ctx_{&pool_, &kernel_table(isa)}, name_(fmt::format("cpu-{}", isa_name(isa))) {
    log::debug("cpu backend: {} kernels, {} threads", isa_name(isa), pool_.size());
  }

  std::string_view name() const override { return name_; }
  Device device() const override { return Device::host(); }
  bool supports(WeightQuant) const override { return true; }  // every WeightQuant has a kernel here
  Allocator& allocator() override { return host_allocator(); }
  double measure_copy_bandwidth_gbs() override { return cpu::measure_copy_bandwidth_gbs(pool_); }
  size_t available_memory_bytes() override { return cpu::mem_available_bytes(); }
  void load_weight(Tensor&, std::vector<Buffer>&) override {}  // read from the checkpoint mapping
  void load_linear(LinearWeight& w, std::vector<Buffer>& owned) override {
    if (w.bias.empty() || w.bias.dtype == DType::kF32) return;
    Buffer b(DType::kF32, {w.bias.numel()});  // [out] f32
    cpu::to_f32(w.bias, b.ptr<float>());
    w.bias = b.view();
    owned.push_back(std::move(b));
  }

  void upload(const void* src, const Tensor& dst) override { std::memcpy(dst.data, src, dst.nbytes()); }
  void to_host(const Tensor& src, void* dst) override { std::memcpy(dst, src.data, src.nbytes()); }
  void fill_zero(const Tensor& t) override { std::memset(t.data, 0, t.nbytes()); }
  void fill_random(const Tensor& t, uint64_t seed, float lo, float hi) override {
    cpu::fill_random(ctx_, t, seed, lo, hi);
  }
  void copy_cols(const Tensor& src, int64_t src_col, const Tensor& dst, int64_t dst_col, int64_t n_cols) override {
    cpu::copy_cols(src, src_col, dst, dst_col, n_cols);
  }
  void gather_rows(const Tensor& src, const Tensor& rows, const Tensor& dst) override {
    cpu::gather_rows(src, rows, dst);
  }
  void copy_rows(const Tensor& src, const Tensor& src_rows, const Tensor& dst, const Tensor& dst_rows) override {
    cpu::copy_rows(src, src_rows, dst, dst_rows);
  }
  void mul_sigmoid(const Tensor& x, const Tensor& gate, const Tensor& out) override { cpu::mul_sigmoid(x, gate, out); }
  void argmax_rows(const Tensor& logits, const Tensor& ids) override { cpu::argmax_rows(ctx_, logits, ids); }

  void linear(const Tensor& x, const LinearWeight& w, const Tensor& y) override {
    cpu::linear(ctx_, x, w, y);
  }
  void linears(const Tensor& x, std::span<const LinearWeight* const> ws, std::span<const Tensor> ys) override {
    cpu::linears(ctx_, x, ws, ys);
  }
  void mlp(const Tensor& x, const MlpWeights& w, const Tensor& out) override { cpu::mlp(ctx_, x, w, out); }
  void embedding(const Tensor& ids, const Tensor& table, const Tensor& out) override {
    cpu::embedding(ctx_, host_span(ids), table, out);
  }
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, bool unit_offset,
                const Tensor& out) override {
    cpu::rms_norm(ctx_, x, weight, eps, unit_offset, out);
  }
  void rope_neox(const Tensor& x, const Tensor& positions, int rot_dim, float theta) override {
    cpu::rope_neox(ctx_, x, host_span(positions), rot_dim, theta);
  }
  void kv_store(const Tensor& k, const Tensor& v, const KvLayerView& kv, const StepState& step) override {
    cpu::kv_store(ctx_, k, v, kv, host_slices(step));
  }
  void attention(const Tensor& q, const KvLayerView& kv, const StepState& step, float scale,
                 const Tensor& out) override {
    cpu::attention(ctx_, q, kv, host_slices(step), scale, out);
  }
  void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out) override {
    cpu::silu_mul(ctx_, gate, up, out);
  }
  void add(const Tensor& a, const Tensor& b, const Tensor& out) override { cpu::add(ctx_, a, b, out); }
  void moe_route(const Tensor& logits, const Tensor& correction_bias, const MoeRouting& routing,
                 const Tensor& topk_ids, const Tensor& topk_weights) override {
    cpu::moe_route(ctx_, logits, correction_bias, routing, topk_ids, topk_weights);
  }
  void moe_experts(const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                   std::span<const MlpWeights> experts, const MlpWeights* shared, const Tensor& out) override {
    cpu::moe_experts(ctx_, x, topk_ids, topk_weights, experts, shared, out);
  }

 private:
  ThreadPool pool_;
  CpuContext ctx_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend_for_isa(Isa isa, int n_threads) {
  return std::make_unique<CpuBackend>(isa, n_threads);
}

}  // namespace cpu

std::unique_ptr<Backend> make_cpu_backend(int n_threads) {
  return cpu::make_cpu_backend_for_isa(cpu::best_isa(), n_threads);
}

}  // namespace tandem::ops
