// models/layers/row_split.h: a step's decode / verify rows go to Backend::linear (linears, mlp), its prefill rows to
// linear_prefill (linears_prefill, mlp_prefill), each into the matching rows of the output; on a backend whose two
// entry points agree (CPU, fake device) every row goes to linear() in one call. Also begin_step's split of the
// logit rows (StepState::decode_logit_rows), which the lm_head uses.
#include "models/layers/row_split.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ops/backends.h"

namespace tandem::models {
namespace {

using ops::Backend;
using ops::LinearWeight;
using ops::MlpWeights;

/// One call of a linear entry point: which, and on how many rows.
struct Call {
  std::string op;
  int64_t rows = 0;
  bool operator==(const Call&) const = default;
};

/// A CPU backend that records the linear entry points called on it and says its prefill path differs. With `mark`,
/// linear_prefill() adds kMark to its outputs, so a test sees which rows it wrote.
class RecordingBackend final : public Backend {
 public:
  static constexpr float kMark = 1000.0f;
  explicit RecordingBackend(bool differs) : cpu_(ops::make_backend("cpu", 1)), differs_(differs) {}

  std::vector<Call> calls;
  bool mark = false;

  void linear(const Tensor& x, const LinearWeight& w, const Tensor& y) override {
    calls.push_back({"linear", x.dim(0)});
    cpu_->linear(x, w, y);
  }
  void linear_prefill(const Tensor& x, const LinearWeight& w, const Tensor& y) override {
    calls.push_back({"linear_prefill", x.dim(0)});
    cpu_->linear(x, w, y);
    if (mark)
      for (int64_t i = 0; i < y.numel(); ++i) y.ptr<float>()[i] += kMark;
  }
  bool prefill_linear_differs() const override { return differs_; }
  void linears(const Tensor& x, std::span<const LinearWeight* const> ws, std::span<const Tensor> ys) override {
    calls.push_back({"linears", x.dim(0)});
    cpu_->linears(x, ws, ys);
  }
  void linears_prefill(const Tensor& x, std::span<const LinearWeight* const> ws, std::span<const Tensor> ys) override {
    calls.push_back({"linears_prefill", x.dim(0)});
    cpu_->linears(x, ws, ys);
  }
  void mlp(const Tensor& x, const MlpWeights& w, const Tensor& out) override {
    calls.push_back({"mlp", x.dim(0)});
    cpu_->mlp(x, w, out);
  }
  void mlp_prefill(const Tensor& x, const MlpWeights& w, const Tensor& out) override {
    calls.push_back({"mlp_prefill", x.dim(0)});
    cpu_->mlp(x, w, out);
  }

  // Everything else is the CPU backend's.
  std::string_view name() const override { return "recording-cpu"; }
  Device device() const override { return cpu_->device(); }
  bool supports(ops::WeightQuant q) const override { return cpu_->supports(q); }
  double measure_copy_bandwidth_gbs() override { return cpu_->measure_copy_bandwidth_gbs(); }
  size_t available_memory_bytes() override { return cpu_->available_memory_bytes(); }
  Allocator& allocator() override { return cpu_->allocator(); }
  void load_linear(LinearWeight& w, std::vector<Buffer>& owned) override { cpu_->load_linear(w, owned); }
  void load_weight(Tensor& t, std::vector<Buffer>& owned) override { cpu_->load_weight(t, owned); }
  void upload(const void* src, const Tensor& dst) override { cpu_->upload(src, dst); }
  void to_host(const Tensor& src, void* dst) override { cpu_->to_host(src, dst); }
  void fill_zero(const Tensor& t) override { cpu_->fill_zero(t); }
  void fill_random(const Tensor& t, uint64_t seed, float lo, float hi) override { cpu_->fill_random(t, seed, lo, hi); }
  void copy_cols(const Tensor& src, int64_t sc, const Tensor& dst, int64_t dc, int64_t n) override {
    cpu_->copy_cols(src, sc, dst, dc, n);
  }
  void gather_rows(const Tensor& src, const Tensor& rows, const Tensor& dst) override {
    cpu_->gather_rows(src, rows, dst);
  }
  void copy_rows(const Tensor& src, const Tensor& sr, const Tensor& dst, const Tensor& dr) override {
    cpu_->copy_rows(src, sr, dst, dr);
  }
  void embedding(const Tensor& ids, const Tensor& table, const Tensor& out) override {
    cpu_->embedding(ids, table, out);
  }
  void rms_norm(const Tensor& x, const Tensor& w, float eps, bool unit, const Tensor& out) override {
    cpu_->rms_norm(x, w, eps, unit, out);
  }
  void rope_neox(const Tensor& x, const Tensor& pos, int rot_dim, float theta) override {
    cpu_->rope_neox(x, pos, rot_dim, theta);
  }
  void kv_store(const Tensor& k, const Tensor& v, const ops::KvLayerView& kv, const ops::StepState& s) override {
    cpu_->kv_store(k, v, kv, s);
  }
  void attention(const Tensor& q, const ops::KvLayerView& kv, const ops::StepState& s, float scale,
                 const Tensor& out) override {
    cpu_->attention(q, kv, s, scale, out);
  }
  void silu_mul(const Tensor& g, const Tensor& u, const Tensor& out) override { cpu_->silu_mul(g, u, out); }
  void add(const Tensor& a, const Tensor& b, const Tensor& out) override { cpu_->add(a, b, out); }
  void mul_sigmoid(const Tensor& x, const Tensor& g, const Tensor& out) override { cpu_->mul_sigmoid(x, g, out); }
  void moe_route(const Tensor& logits, const Tensor& bias, const ops::MoeRouting& r, const Tensor& ids,
                 const Tensor& weights) override {
    cpu_->moe_route(logits, bias, r, ids, weights);
  }
  void moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, std::span<const MlpWeights> experts,
                   const MlpWeights* shared, const Tensor& out) override {
    cpu_->moe_experts(x, ids, weights, experts, shared, out);
  }
  void argmax_rows(const Tensor& logits, const Tensor& ids) override { cpu_->argmax_rows(logits, ids); }

 private:
  std::unique_ptr<Backend> cpu_;
  bool differs_;
};

/// Deterministic values in [-1, 1).
std::vector<float> values(int64_t n, int salt) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>((i * 7919 + salt * 104729) % 2003) / 1001.5f - 1.0f;
  return v;
}

/// A host f32 tensor over `p`.
Tensor host_f32(float* p, Shape shape) { return Tensor{.data = p, .shape = shape, .dtype = DType::kF32}; }

/// Host weights (the CPU backends read host memory): f32 [out, in] linears.
struct Weights {
  std::vector<std::vector<float>> data;
  LinearWeight linear(int64_t out, int64_t in) {
    data.push_back(values(out * in, static_cast<int>(data.size()) + 1));
    return LinearWeight{.weight = host_f32(data.back().data(), {out, in})};
  }
};

std::vector<float> host(Backend& be, const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  be.to_host(t, v.data());
  return v;
}

constexpr int64_t kT = 7, kIn = 24, kOut = 10, kI = 12;

class RowSplit : public ::testing::TestWithParam<int64_t> {};  // the number of exact rows D

TEST_P(RowSplit, LinearSendsEachRowRangeToItsEntryPoint) {
  const int64_t D = GetParam();
  RecordingBackend be(true);
  Weights ws;
  const LinearWeight w = ws.linear(kOut, kIn);
  std::vector<float> xs = values(kT * kIn, 0);
  const Tensor x = host_f32(xs.data(), {kT, kIn});
  Buffer want = be.alloc(DType::kF32, {kT, kOut}), got = be.alloc(DType::kF32, {kT, kOut});
  be.linear(x, w, want.view());
  be.calls.clear();
  be.mark = true;
  split_linear(be, D, x, w, got.view());

  std::vector<Call> expected;
  if (D > 0) expected.push_back({"linear", D});
  if (D < kT) expected.push_back({"linear_prefill", kT - D});
  EXPECT_EQ(be.calls, expected);
  const std::vector<float> a = host(be, want.view()), b = host(be, got.view());
  for (int64_t t = 0; t < kT; ++t)
    for (int64_t o = 0; o < kOut; ++o) {
      const float mark = t < D ? 0.0f : RecordingBackend::kMark;
      EXPECT_EQ(b[t * kOut + o], a[t * kOut + o] + mark) << "row " << t << " col " << o << ", D = " << D;
    }
}

TEST_P(RowSplit, LinearsAndMlpSplitTheSameWay) {
  const int64_t D = GetParam();
  RecordingBackend be(true);
  Weights ws;
  const LinearWeight q = ws.linear(kOut, kIn), k = ws.linear(3, kIn);
  const MlpWeights m{.gate_proj = ws.linear(kI, kIn), .up_proj = ws.linear(kI, kIn), .down_proj = ws.linear(kIn, kI)};
  std::vector<float> xs = values(kT * kIn, 5);
  const Tensor x = host_f32(xs.data(), {kT, kIn});

  Buffer yq = be.alloc(DType::kF32, {kT, kOut}), yk = be.alloc(DType::kF32, {kT, 3});
  Buffer rq = be.alloc(DType::kF32, {kT, kOut}), rk = be.alloc(DType::kF32, {kT, 3});
  const LinearWeight* pw[] = {&q, &k};
  const Tensor ys[] = {yq.view(), yk.view()}, refs[] = {rq.view(), rk.view()};
  be.linears(x, pw, refs);
  Buffer out = be.alloc(DType::kF32, {kT, kIn}), ref = be.alloc(DType::kF32, {kT, kIn});
  be.mlp(x, m, ref.view());
  be.calls.clear();
  split_linears(be, D, x, pw, ys);
  split_mlp(be, D, x, m, out.view());

  std::vector<Call> expected;
  for (const char* op : {"linears", "mlp"}) {
    if (D > 0) expected.push_back({op, D});
    if (D < kT) expected.push_back({std::string(op) + "_prefill", kT - D});
  }
  EXPECT_EQ(be.calls, expected);
  // The recording backend's prefill entry points compute what the exact ones do: every row must land in place.
  EXPECT_EQ(host(be, yq.view()), host(be, rq.view()));
  EXPECT_EQ(host(be, yk.view()), host(be, rk.view()));
  EXPECT_EQ(host(be, out.view()), host(be, ref.view()));
}

TEST_P(RowSplit, OneExactCallWhereThePrefillPathDoesNotDiffer) {
  const int64_t D = GetParam();
  RecordingBackend be(false);
  Weights ws;
  const LinearWeight w = ws.linear(kOut, kIn);
  const MlpWeights m{.gate_proj = ws.linear(kI, kIn), .up_proj = ws.linear(kI, kIn), .down_proj = ws.linear(kIn, kI)};
  std::vector<float> xs = values(kT * kIn, 9);
  const Tensor x = host_f32(xs.data(), {kT, kIn});
  Buffer y = be.alloc(DType::kF32, {kT, kOut}), out = be.alloc(DType::kF32, {kT, kIn});
  const LinearWeight* pw[] = {&w};
  const Tensor ys[] = {y.view()};
  split_linear(be, D, x, w, y.view());
  split_linears(be, D, x, pw, ys);
  split_mlp(be, D, x, m, out.view());
  EXPECT_EQ(be.calls, (std::vector<Call>{{"linear", kT}, {"linears", kT}, {"mlp", kT}}));
}

INSTANTIATE_TEST_SUITE_P(ExactRows, RowSplit, ::testing::Values(int64_t{0}, int64_t{3}, kT),
                         [](const auto& info) { return "D" + std::to_string(info.param); });

TEST(RowSplitChecks, ExactRowsOutsideTheCallFail) {
  RecordingBackend be(true);
  Weights ws;
  const LinearWeight w = ws.linear(kOut, kIn);
  std::vector<float> xs = values(kT * kIn, 0);
  const Tensor x = host_f32(xs.data(), {kT, kIn});
  Buffer y = be.alloc(DType::kF32, {kT, kOut});
  EXPECT_THROW(split_linear(be, kT + 1, x, w, y.view()), Error);
  EXPECT_THROW(split_linear(be, -1, x, w, y.view()), Error);
}

/// The real backends: the split gives linear()'s bits for every row (their prefill path is their exact path).
TEST(RowSplitChecks, CpuAndFakeDeviceGiveLinearsBits) {
  for (const char* device : {"cpu", "fake"}) {
    auto be = ops::make_backend(device, 2);
    Weights ws;
    LinearWeight w = ws.linear(kOut, kIn);
    std::vector<Buffer> owned;
    Tensor weight = w.weight;
    be->load_weight(weight, owned);  // the fake device moves it to its memory
    w.weight = weight;
    std::vector<float> xs = values(kT * kIn, 2);
    Buffer x = be->alloc(DType::kF32, {kT, kIn}), want = be->alloc(DType::kF32, {kT, kOut});
    be->upload(xs.data(), x.view());
    be->linear(x.view(), w, want.view());
    for (int64_t D : {int64_t{0}, int64_t{4}, kT}) {
      Buffer got = be->alloc(DType::kF32, {kT, kOut});
      split_linear(*be, D, x.view(), w, got.view());
      EXPECT_EQ(host(*be, got.view()), host(*be, want.view())) << device << ", D = " << D;
    }
  }
}

/// begin_step: the logit rows of decode rows lead, and StepState counts them for the lm_head's split.
TEST(RowSplitChecks, BeginStepCountsTheDecodeLogitRows) {
  auto be = ops::make_backend("cpu", 1);
  Arena arena(be->allocator());
  const std::vector<int32_t> table(4, 0);
  const std::vector<int32_t> positions = {5, 9, 10, 11, 0, 1, 2};  // a decode row, a 3-row verify, a prefill chunk
  const ops::SeqSlice seqs[] = {{.token_begin = 0, .n_tokens = 1, .start_pos = 5, .block_table = table.data()},
                                {.token_begin = 1, .n_tokens = 3, .start_pos = 9, .block_table = table.data()},
                                {.token_begin = 4, .n_tokens = 3, .start_pos = 0, .block_table = table.data()}};
  const std::vector<int32_t> logit_rows = {0, 1, 2, 3, 6};
  const ops::StepState s = be->begin_step(
      {.positions = positions, .seqs = seqs, .logit_rows = logit_rows, .block_size = 16, .decode_rows = 4}, arena);
  EXPECT_EQ(s.decode_rows, 4);
  EXPECT_EQ(s.decode_logit_rows, 4);
  const std::vector<int32_t> mixed = {6, 0};  // a prefill row's logits before a decode row's: no prefix to split
  EXPECT_THROW((void)be->begin_step({.positions = positions, .seqs = seqs, .logit_rows = mixed, .block_size = 16,
                                     .decode_rows = 4},
                                    arena),
               Error);
  EXPECT_THROW((void)be->begin_step({.positions = positions, .seqs = seqs, .block_size = 16, .decode_rows = 8}, arena),
               Error);
}

}  // namespace
}  // namespace tandem::models
