// Routed experts: out[t] += sum_k w[t, k] * down(silu(gate(x[t])) * up(x[t])) for the selected experts.
//
// Tokens are grouped by expert, so each selected expert's weights stream from memory once per call and
// serve all its tokens through the linear kernel. Two parallel phases, each one parallel_for over rows of
// all active experts at once (so T = 1 with K big experts keeps every thread busy):
//   1. units (expert, block of I rows): gate and up rows for the expert's tokens, then h = silu(g) * u.
//   2. units (block of H rows): for every active expert in ascending id, down rows for its tokens, added
//      into out[t, rows] with the token's weight. A thread owns its output rows, so there are no races,
//      and the summation order (ascending expert id) does not depend on threads or batch composition.
#include <algorithm>
#include <vector>

#include "ops/cpu/cpu_ops.h"

namespace tandem::ops::cpu {
namespace {

constexpr int64_t kRowBlock = 16;

struct ActiveExpert {
  int32_t id = 0;
  int64_t slot_begin = 0;  // its assignments in the slot arrays: [slot_begin, slot_begin + n)
  int64_t n = 0;
  int64_t inter = 0;       // I of this expert
  int64_t h_offset = 0;    // first float of its [n, I] block in the h buffer
  int64_t unit_begin = 0;  // first phase-1 unit
};

std::vector<float>& scratch(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf;
}

void run_chunk(const CpuContext& ctx, const float* x, int64_t H, const int32_t* ids, const float* weights,
               int K, int64_t tb, int64_t te, std::span<const MlpWeights> experts, float* out) {
  const int64_t E = static_cast<int64_t>(experts.size());
  // Counting sort of the (token, k) assignments by expert; within an expert, tokens stay ascending.
  std::vector<int64_t> count(static_cast<size_t>(E) + 1, 0);
  for (int64_t t = tb; t < te; ++t)
    for (int k = 0; k < K; ++k) ++count[ids[t * K + k] + 1];
  for (int64_t e = 0; e < E; ++e) count[e + 1] += count[e];
  const int64_t n_slots = (te - tb) * K;
  std::vector<int32_t> slot_token(static_cast<size_t>(n_slots));  // [n_slots] row of x / out
  std::vector<float> slot_weight(static_cast<size_t>(n_slots));   // [n_slots] mixing weight
  {
    std::vector<int64_t> fill(count.begin(), count.end() - 1);
    for (int64_t t = tb; t < te; ++t)
      for (int k = 0; k < K; ++k) {
        const int64_t s = fill[ids[t * K + k]]++;
        slot_token[s] = static_cast<int32_t>(t);
        slot_weight[s] = weights[t * K + k];
      }
  }
  std::vector<ActiveExpert> active;
  std::vector<PreparedLinear> gate, up, down;
  int64_t h_floats = 0, units1 = 0;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t n = count[e + 1] - count[e];
    if (n == 0) continue;
    const MlpWeights& m = experts[e];
    gate.emplace_back(m.gate_proj, "moe_experts: gate_proj");
    up.emplace_back(m.up_proj, "moe_experts: up_proj");
    down.emplace_back(m.down_proj, "moe_experts: down_proj");
    const int64_t I = gate.back().out();
    TANDEM_CHECK(
        gate.back().in() == H && up.back().in() == H && up.back().out() == I && down.back().in() == I &&
            down.back().out() == H,
        "moe_experts: expert {} has gate {}x{}, up {}x{}, down {}x{}; expected [I, {}], [I, {}], [{}, I]", e,
        gate.back().out(), gate.back().in(), up.back().out(), up.back().in(), down.back().out(),
        down.back().in(), H, H, H);
    active.push_back({static_cast<int32_t>(e), count[e], n, I, h_floats, units1});
    h_floats += n * I;
    units1 += (I + kRowBlock - 1) / kRowBlock;
  }
  std::vector<float> h(static_cast<size_t>(h_floats));  // per active expert: [n, I] silu(gate) * up

  const LinearRowsFn fn = ctx.kernels->linear_rows;
  ctx.pool->parallel_for(units1, grain_for(2 * kRowBlock * H), [&](int64_t ub, int64_t ue) {
    size_t a = std::upper_bound(active.begin(), active.end(), ub,
                                [](int64_t u, const ActiveExpert& ex) { return u < ex.unit_begin; }) -
               active.begin() - 1;
    for (int64_t u = ub; u < ue; ++u) {
      while (a + 1 < active.size() && u >= active[a + 1].unit_begin) ++a;
      const ActiveExpert& ex = active[a];
      const int64_t r0 = (u - ex.unit_begin) * kRowBlock, r1 = std::min(ex.inter, r0 + kRowBlock),
                    nr = r1 - r0;
      std::vector<float>& buf = scratch(static_cast<size_t>(2 * ex.n * nr));
      float* g = buf.data();
      float* v = buf.data() + ex.n * nr;
      const int32_t* rows = slot_token.data() + ex.slot_begin;
      fn(gate[a].problem(x, H, rows, ex.n, g, nr, r0), r0, r1, 0, ex.n);
      fn(up[a].problem(x, H, rows, ex.n, v, nr, r0), r0, r1, 0, ex.n);
      for (int64_t s = 0; s < ex.n; ++s)
        ctx.kernels->silu_mul(g + s * nr, v + s * nr, h.data() + ex.h_offset + s * ex.inter + r0, nr);
    }
  });

  const int64_t units2 = (H + kRowBlock - 1) / kRowBlock;
  const int64_t cost2 = kRowBlock * std::max<int64_t>(h_floats, 1);
  ctx.pool->parallel_for(units2, grain_for(cost2), [&](int64_t ub, int64_t ue) {
    const int64_t r0 = ub * kRowBlock, r1 = std::min(H, ue * kRowBlock), nr = r1 - r0;
    for (size_t a = 0; a < active.size(); ++a) {
      const ActiveExpert& ex = active[a];
      std::vector<float>& buf = scratch(static_cast<size_t>(ex.n * nr));
      float* y = buf.data();
      fn(down[a].problem(h.data() + ex.h_offset, ex.inter, nullptr, ex.n, y, nr, r0), r0, r1, 0, ex.n);
      for (int64_t s = 0; s < ex.n; ++s) {
        const float w = slot_weight[ex.slot_begin + s];
        float* o = out + slot_token[ex.slot_begin + s] * H + r0;
        const float* ys = y + s * nr;
        for (int64_t j = 0; j < nr; ++j) o[j] += w * ys[j];
      }
    }
  });
}

}  // namespace

void moe_experts(const CpuContext& ctx, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                 std::span<const MlpWeights> experts, const Tensor& out, int64_t max_hidden_floats) {
  TANDEM_CHECK(x.dtype == DType::kF32 && x.rank() == 2, "moe_experts: x must be f32 [T, H], got {} {}",
               dtype_name(x.dtype), x.shape.str());
  const int64_t T = x.dim(0), H = x.dim(1);
  TANDEM_CHECK(out.dtype == DType::kF32 && out.shape == x.shape && out.data != x.data,
               "moe_experts: out must be a separate f32 {} tensor, got {}", x.shape.str(), out.shape.str());
  TANDEM_CHECK(topk_ids.dtype == DType::kI32 && topk_weights.dtype == DType::kF32 && topk_ids.rank() == 2 &&
                   topk_ids.shape == topk_weights.shape && topk_ids.dim(0) == T,
               "moe_experts: topk_ids (i32) and topk_weights (f32) must both be [{}, K], got {} {} and {} {}",
               T, dtype_name(topk_ids.dtype), topk_ids.shape.str(), dtype_name(topk_weights.dtype),
               topk_weights.shape.str());
  const int K = static_cast<int>(topk_ids.dim(1));
  const int64_t E = static_cast<int64_t>(experts.size());
  const int32_t* ids = topk_ids.ptr<const int32_t>();
  for (int64_t i = 0; i < T * K; ++i)
    TANDEM_CHECK(ids[i] >= 0 && ids[i] < E,
                 "moe_experts: token {} selects expert {}, the layer has {} experts", i / K, ids[i], E);
  if (T == 0 || K == 0) return;
  int64_t max_inter = 1;
  for (const MlpWeights& m : experts)
    if (m.gate_proj.weight.rank() == 2) max_inter = std::max(max_inter, m.gate_proj.out_features());
  const int64_t chunk = std::max<int64_t>(1, max_hidden_floats / (int64_t{K} * max_inter));
  for (int64_t tb = 0; tb < T; tb += chunk)
    run_chunk(ctx, x.ptr<const float>(), H, ids, topk_weights.ptr<const float>(), K, tb,
              std::min(T, tb + chunk), experts, out.ptr<float>());
}

}  // namespace tandem::ops::cpu
