// The CPU Backend: owns a thread pool, picks the ISA's kernels once, forwards each op to its family file.
#include "ops/cpu/cpu_backend.h"

#include <cstring>
#include <string>

#include "core/log.h"
#include "ops/cpu/cpu_ops.h"

namespace tandem::ops {
namespace cpu {
namespace {

class CpuBackend final : public Backend {
 public:
  CpuBackend(Isa isa, int n_threads)
      : pool_(n_threads), ctx_{&pool_, &kernel_table(isa)}, name_(fmt::format("cpu-{}", isa_name(isa))) {
    log::debug("cpu backend: {} kernels, {} threads", isa_name(isa), pool_.size());
  }

  std::string_view name() const override { return name_; }
  Device device() const override { return Device::kCPU; }
  Buffer alloc(DType dtype, Shape shape) override { return Buffer(dtype, shape); }

  void linear(const Tensor& x, const LinearWeight& w, const Tensor& y) override {
    cpu::linear(ctx_, x, w, y);
  }
  void linears(const Tensor& x, std::span<const LinearWeight* const> ws, std::span<const Tensor> ys) override {
    cpu::linears(ctx_, x, ws, ys);
  }
  void mlp(const Tensor& x, const MlpWeights& w, const Tensor& out) override { cpu::mlp(ctx_, x, w, out); }
  void embedding(std::span<const int32_t> ids, const Tensor& table, const Tensor& out) override {
    cpu::embedding(ctx_, ids, table, out);
  }
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, bool unit_offset,
                const Tensor& out) override {
    cpu::rms_norm(ctx_, x, weight, eps, unit_offset, out);
  }
  void rope_neox(const Tensor& x, std::span<const int32_t> positions, int rot_dim, float theta) override {
    cpu::rope_neox(ctx_, x, positions, rot_dim, theta);
  }
  void kv_store(const Tensor& k, const Tensor& v, const KvLayerView& kv,
                std::span<const SeqSlice> seqs) override {
    cpu::kv_store(ctx_, k, v, kv, seqs);
  }
  void attention(const Tensor& q, const KvLayerView& kv, std::span<const SeqSlice> seqs, float scale,
                 const Tensor& out) override {
    cpu::attention(ctx_, q, kv, seqs, scale, out);
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
  void to_host(const Tensor& src, void* dst) override { std::memcpy(dst, src.data, src.nbytes()); }

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
