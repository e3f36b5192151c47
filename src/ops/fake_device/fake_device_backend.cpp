#include "ops/fake_device/fake_device_backend.h"

#include <cstring>
#include <string>
#include <vector>

namespace tandem::ops {

namespace {

// Bit 62 set: outside the canonical x86-64 / AArch64 address ranges, so any host access faults.
constexpr uintptr_t kTag = uintptr_t{1} << 62;

void* untag(const void* p) {
  const auto u = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<void*>(u & kTag ? u ^ kTag : u);
}

class FakeDeviceAllocator final : public Allocator {
 public:
  Device device() const override { return Device{.kind = DeviceKind::kFake}; }
  void* allocate(size_t bytes) override {
    return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(host_allocator().allocate(bytes)) | kTag);
  }
  void deallocate(void* p, size_t bytes) override { host_allocator().deallocate(untag(p), bytes); }
};

/// The host view of a tensor this backend may touch: device tensors are untagged, host ones (weights read from
/// the checkpoint mapping) pass through.
Tensor h(const Tensor& t) {
  Tensor u = t;
  u.data = untag(t.data);
  u.device = Device::host();
  return u;
}

KvLayerView h(const KvLayerView& kv) {
  KvLayerView u = kv;
  u.k = untag(kv.k);
  u.v = untag(kv.v);
  u.k_scale = static_cast<const float*>(untag(kv.k_scale));
  u.v_scale = static_cast<const float*>(untag(kv.v_scale));
  return u;
}

/// A linear's or an MLP's weights as the CPU kernels read them: loaded weights stay in host memory (load_linear
/// leaves them in the checkpoint mapping), weights made on the device (--load-format dummy) are untagged.
LinearWeight h(const LinearWeight& w) {
  LinearWeight u = w;
  u.weight = h(w.weight);
  u.scale = h(w.scale);
  u.bias = h(w.bias);
  return u;
}

MlpWeights h(const MlpWeights& m) { return MlpWeights{h(m.gate_proj), h(m.up_proj), h(m.down_proj)}; }

StepState h(const StepState& s) {
  StepState u = s;
  u.tokens = h(s.tokens);
  u.positions = h(s.positions);
  u.logit_rows = h(s.logit_rows);
  u.seq_info = h(s.seq_info);
  u.block_tables = h(s.block_tables);
  return u;
}

class FakeDeviceBackend final : public Backend {
 public:
  explicit FakeDeviceBackend(int n_threads) : cpu_(make_cpu_backend(n_threads)), name_("fake-device") {}

  std::string_view name() const override { return name_; }
  Device device() const override { return allocator_.device(); }
  bool supports(WeightQuant q) const override { return cpu_->supports(q); }
  Allocator& allocator() override { return allocator_; }
  double measure_copy_bandwidth_gbs() override { return cpu_->measure_copy_bandwidth_gbs(); }
  size_t available_memory_bytes() override { return cpu_->available_memory_bytes(); }
  void load_linear(LinearWeight& w, std::vector<Buffer>& owned) override { cpu_->load_linear(w, owned); }
  /// Plain weights move to "device" memory, as on a GPU, so model code that reads one on the host faults here.
  void load_weight(Tensor& t, std::vector<Buffer>& owned) override {
    if (t.empty()) return;
    Buffer b(allocator_, t.dtype, t.shape);
    upload(t.data, b.tensor());
    t = b.view();
    owned.push_back(std::move(b));
  }

  void upload(const void* src, const Tensor& dst) override { cpu_->upload(src, h(dst)); }
  void to_host(const Tensor& src, void* dst) override { cpu_->to_host(h(src), dst); }
  void fill_zero(const Tensor& t) override { cpu_->fill_zero(h(t)); }
  void fill_random(const Tensor& t, uint64_t seed, float lo, float hi) override {
    cpu_->fill_random(h(t), seed, lo, hi);
  }
  void copy_cols(const Tensor& src, int64_t src_col, const Tensor& dst, int64_t dst_col, int64_t n_cols) override {
    cpu_->copy_cols(h(src), src_col, h(dst), dst_col, n_cols);
  }
  void gather_rows(const Tensor& src, const Tensor& rows, const Tensor& dst) override {
    cpu_->gather_rows(h(src), h(rows), h(dst));
  }
  void copy_rows(const Tensor& src, const Tensor& src_rows, const Tensor& dst, const Tensor& dst_rows) override {
    cpu_->copy_rows(h(src), h(src_rows), h(dst), h(dst_rows));
  }
  void linear(const Tensor& x, const LinearWeight& w, const Tensor& y) override { cpu_->linear(h(x), h(w), h(y)); }
  void linears(const Tensor& x, std::span<const LinearWeight* const> ws, std::span<const Tensor> ys) override {
    std::vector<Tensor> hy(ys.size());
    for (size_t i = 0; i < ys.size(); ++i) hy[i] = h(ys[i]);
    std::vector<LinearWeight> hw(ws.size());
    std::vector<const LinearWeight*> hp(ws.size());
    for (size_t i = 0; i < ws.size(); ++i) {
      hw[i] = h(*ws[i]);
      hp[i] = &hw[i];
    }
    cpu_->linears(h(x), hp, hy);
  }
  void mlp(const Tensor& x, const MlpWeights& w, const Tensor& out) override { cpu_->mlp(h(x), h(w), h(out)); }
  void embedding(const Tensor& ids, const Tensor& table, const Tensor& out) override {
    cpu_->embedding(h(ids), h(table), h(out));
  }
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, bool unit_offset, const Tensor& out) override {
    cpu_->rms_norm(h(x), h(weight), eps, unit_offset, h(out));
  }
  void rope_neox(const Tensor& x, const Tensor& positions, int rot_dim, float theta) override {
    cpu_->rope_neox(h(x), h(positions), rot_dim, theta);
  }
  void kv_store(const Tensor& k, const Tensor& v, const KvLayerView& kv, const StepState& step) override {
    cpu_->kv_store(h(k), h(v), h(kv), h(step));
  }
  void attention(const Tensor& q, const KvLayerView& kv, const StepState& step, float scale,
                 const Tensor& out) override {
    cpu_->attention(h(q), h(kv), h(step), scale, h(out));
  }
  void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out) override {
    cpu_->silu_mul(h(gate), h(up), h(out));
  }
  void add(const Tensor& a, const Tensor& b, const Tensor& out) override { cpu_->add(h(a), h(b), h(out)); }
  void mul_sigmoid(const Tensor& x, const Tensor& gate, const Tensor& out) override {
    cpu_->mul_sigmoid(h(x), h(gate), h(out));
  }
  void moe_route(const Tensor& logits, const Tensor& correction_bias, const MoeRouting& routing,
                 const Tensor& topk_ids, const Tensor& topk_weights) override {
    cpu_->moe_route(h(logits), h(correction_bias), routing, h(topk_ids), h(topk_weights));
  }
  void moe_experts(const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                   std::span<const MlpWeights> experts, const MlpWeights* shared, const Tensor& out) override {
    std::vector<MlpWeights> he;
    he.reserve(experts.size());
    for (const MlpWeights& e : experts) he.push_back(h(e));
    const MlpWeights hs = shared ? h(*shared) : MlpWeights{};
    cpu_->moe_experts(h(x), h(topk_ids), h(topk_weights), he, shared ? &hs : nullptr, h(out));
  }
  void argmax_rows(const Tensor& logits, const Tensor& ids) override { cpu_->argmax_rows(h(logits), h(ids)); }

 private:
  std::unique_ptr<Backend> cpu_;
  FakeDeviceAllocator allocator_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Backend> make_fake_device_backend(int n_threads) {
  return std::make_unique<FakeDeviceBackend>(n_threads);
}

bool is_fake_device_pointer(const void* p) { return (reinterpret_cast<uintptr_t>(p) & kTag) != 0; }

}  // namespace tandem::ops
