// Routed experts: out[t] += sum_k w[t, k] * down(silu(gate(x[t])) * up(x[t])) for the selected experts,
// then + shared(x[t]) when the layer has shared experts; and the dense MLP, which is the same computation
// with one expert that every token takes with weight 1.
//
// Tokens are grouped by expert, so each selected expert's weights stream from memory once per call and
// serve all its tokens through the linear kernel. Two parallel phases, each one balanced parallel loop over
// rows of all active experts at once (so T = 1 with K big experts keeps every thread busy, and a thread
// that streams faster takes units off the other's end instead of waiting for it):
//   1. units (expert, block of I rows): a thread takes its consecutive units of an expert as one row range
//      and streams gate rows, then up rows, for the expert's tokens; then h = silu(g) * u.
//   2. units (block of H rows): for every active expert in order (routed by ascending id, then shared),
//      down rows for its tokens, added into out[t, rows] with the token's weight. A thread owns its output
//      rows, so there are no races, and the summation order does not depend on threads or batch
//      composition.
#include <algorithm>
#include <vector>

#include "ops/cpu/cpu_ops.h"

namespace tandem::ops::cpu {
namespace {

constexpr int64_t kRowBlock = 16;
// Phase 1 scratch per thread ([2, tokens, rows] f32 of gate and up outputs) is bounded to this many floats;
// a thread's row range is processed in passes that fit.
constexpr int64_t kPhase1ScratchFloats = int64_t{1} << 18;

struct ActiveExpert {
  int64_t slot_begin = 0;  // its assignments in the slot arrays: [slot_begin, slot_begin + n)
  int64_t n = 0;
  int64_t inter = 0;       // I of this expert
  int64_t h_offset = 0;    // first float of its [n, I] block in the h buffer
  int64_t unit_begin = 0;  // first phase-1 unit
};

/// One call's work: experts in summation order with their (token, weight) slots.
struct ExpertBatch {
  std::vector<int32_t> slot_token;  // [n_slots] row of x / out
  std::vector<float> slot_weight;   // [n_slots] mixing weight
  std::vector<ActiveExpert> active;
  std::vector<PreparedLinear> gate, up, down;  // per active expert

  /// Appends an expert whose tokens are slots [slot_begin, slot_begin + n).
  void add(const MlpWeights& m, int64_t slot_begin, int64_t n, int64_t H, std::string_view what) {
    gate.emplace_back(m.gate_proj, what);
    up.emplace_back(m.up_proj, what);
    down.emplace_back(m.down_proj, what);
    const int64_t I = gate.back().out();
    TANDEM_CHECK(gate.back().in() == H && up.back().in() == H && up.back().out() == I &&
                     down.back().in() == I && down.back().out() == H,
                 "{}: gate {}x{}, up {}x{}, down {}x{}; expected [I, {}], [I, {}], [{}, I]", what,
                 gate.back().out(), gate.back().in(), up.back().out(), up.back().in(), down.back().out(),
                 down.back().in(), H, H, H);
    ActiveExpert ex{.slot_begin = slot_begin, .n = n, .inter = I};
    if (!active.empty()) {
      const ActiveExpert& prev = active.back();
      ex.h_offset = prev.h_offset + prev.n * prev.inter;
      ex.unit_begin = prev.unit_begin + (prev.inter + kRowBlock - 1) / kRowBlock;
    }
    active.push_back(ex);
  }
  int64_t h_floats() const {
    return active.empty() ? 0 : active.back().h_offset + active.back().n * active.back().inter;
  }
  int64_t units1() const {
    return active.empty() ? 0 : active.back().unit_begin + (active.back().inter + kRowBlock - 1) / kRowBlock;
  }
};

std::vector<float>& scratch(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf;
}

void run_batch(const CpuContext& ctx, const float* x, int64_t H, const ExpertBatch& b, float* out) {
  const std::vector<ActiveExpert>& active = b.active;
  if (active.empty()) return;
  std::vector<float> h(static_cast<size_t>(b.h_floats()));  // per active expert: [n, I] silu(gate) * up

  const LinearRowsFn fn = ctx.kernels->linear_rows;
  ctx.pool->parallel_for_balanced(b.units1(), grain_for(2 * kRowBlock * H), [&](int64_t ub, int64_t ue) {
    size_t a = std::upper_bound(active.begin(), active.end(), ub,
                                [](int64_t u, const ActiveExpert& ex) { return u < ex.unit_begin; }) -
               active.begin() - 1;
    for (int64_t u = ub; u < ue; ++a) {
      const ActiveExpert& ex = active[a];
      const int64_t units = (ex.inter + kRowBlock - 1) / kRowBlock;
      const int64_t u_end = std::min(ue, ex.unit_begin + units);
      const int64_t r_begin = (u - ex.unit_begin) * kRowBlock,
                    r_end = std::min(ex.inter, (u_end - ex.unit_begin) * kRowBlock);
      const int64_t pass_rows =
          std::max(kRowBlock, kPhase1ScratchFloats / (2 * ex.n) / kRowBlock * kRowBlock);
      const int32_t* rows = b.slot_token.data() + ex.slot_begin;
      for (int64_t r0 = r_begin; r0 < r_end; r0 += pass_rows) {
        const int64_t r1 = std::min(r_end, r0 + pass_rows), nr = r1 - r0;
        std::vector<float>& buf = scratch(static_cast<size_t>(2 * ex.n * nr));
        float* g = buf.data();
        float* v = buf.data() + ex.n * nr;
        fn(b.gate[a].problem(x, H, rows, ex.n, g, nr, r0), r0, r1, 0, ex.n);
        fn(b.up[a].problem(x, H, rows, ex.n, v, nr, r0), r0, r1, 0, ex.n);
        for (int64_t s = 0; s < ex.n; ++s)
          ctx.kernels->silu_mul(g + s * nr, v + s * nr, h.data() + ex.h_offset + s * ex.inter + r0, nr);
      }
      u = u_end;
    }
  });

  const int64_t units2 = (H + kRowBlock - 1) / kRowBlock;
  const int64_t cost2 = kRowBlock * std::max<int64_t>(b.h_floats(), 1);
  ctx.pool->parallel_for_balanced(units2, grain_for(cost2), [&](int64_t ub, int64_t ue) {
    const int64_t r0 = ub * kRowBlock, r1 = std::min(H, ue * kRowBlock), nr = r1 - r0;
    for (size_t a = 0; a < active.size(); ++a) {
      const ActiveExpert& ex = active[a];
      std::vector<float>& buf = scratch(static_cast<size_t>(ex.n * nr));
      float* y = buf.data();
      fn(b.down[a].problem(h.data() + ex.h_offset, ex.inter, nullptr, ex.n, y, nr, r0), r0, r1, 0, ex.n);
      for (int64_t s = 0; s < ex.n; ++s) {
        const float w = b.slot_weight[ex.slot_begin + s];
        float* o = out + b.slot_token[ex.slot_begin + s] * H + r0;
        const float* ys = y + s * nr;
        for (int64_t j = 0; j < nr; ++j) o[j] += w * ys[j];
      }
    }
  });
}

/// Appends an expert that every token of [tb, te) takes with weight 1.
void add_all_tokens(ExpertBatch& b, const MlpWeights& m, int64_t tb, int64_t te, int64_t H,
                    std::string_view what) {
  const int64_t begin = static_cast<int64_t>(b.slot_token.size());
  for (int64_t t = tb; t < te; ++t) {
    b.slot_token.push_back(static_cast<int32_t>(t));
    b.slot_weight.push_back(1.0f);
  }
  b.add(m, begin, te - tb, H, what);
}

void run_chunk(const CpuContext& ctx, const float* x, int64_t H, const int32_t* ids, const float* weights,
               int K, int64_t tb, int64_t te, std::span<const MlpWeights> experts, const MlpWeights* shared,
               float* out) {
  const int64_t E = static_cast<int64_t>(experts.size());
  // Counting sort of the (token, k) assignments by expert; within an expert, tokens stay ascending.
  std::vector<int64_t> count(static_cast<size_t>(E) + 1, 0);
  for (int64_t t = tb; t < te; ++t)
    for (int k = 0; k < K; ++k) ++count[ids[t * K + k] + 1];
  for (int64_t e = 0; e < E; ++e) count[e + 1] += count[e];
  const int64_t n_slots = (te - tb) * K;
  ExpertBatch b;
  b.slot_token.resize(static_cast<size_t>(n_slots));
  b.slot_weight.resize(static_cast<size_t>(n_slots));
  {
    std::vector<int64_t> fill(count.begin(), count.end() - 1);
    for (int64_t t = tb; t < te; ++t)
      for (int k = 0; k < K; ++k) {
        const int64_t s = fill[ids[t * K + k]]++;
        b.slot_token[s] = static_cast<int32_t>(t);
        b.slot_weight[s] = weights[t * K + k];
      }
  }
  for (int64_t e = 0; e < E; ++e)
    if (count[e + 1] > count[e])
      b.add(experts[e], count[e], count[e + 1] - count[e], H, fmt::format("moe_experts: expert {}", e));
  if (shared) add_all_tokens(b, *shared, tb, te, H, "moe_experts: shared experts");
  run_batch(ctx, x, H, b, out);
}

void check_x_out(const Tensor& x, const Tensor& out, const char* what) {
  TANDEM_CHECK(x.dtype == DType::kF32 && x.rank() == 2, "{}: x must be f32 [T, H], got {} {}", what,
               dtype_name(x.dtype), x.shape.str());
  TANDEM_CHECK(out.dtype == DType::kF32 && out.shape == x.shape && out.data != x.data,
               "{}: out must be a separate f32 {} tensor, got {}", what, x.shape.str(), out.shape.str());
}

}  // namespace

void moe_experts(const CpuContext& ctx, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                 std::span<const MlpWeights> experts, const MlpWeights* shared, const Tensor& out,
                 int64_t max_hidden_floats) {
  check_x_out(x, out, "moe_experts");
  const int64_t T = x.dim(0), H = x.dim(1);
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
  if (T == 0 || (K == 0 && !shared)) return;
  int64_t max_inter = 1;  // I summed over the experts a token can touch (K routed + shared)
  for (const MlpWeights& m : experts)
    if (m.gate_proj.weight.rank() == 2) max_inter = std::max(max_inter, m.gate_proj.out_features());
  max_inter *= K;
  if (shared && shared->gate_proj.weight.rank() == 2) max_inter += shared->gate_proj.out_features();
  const int64_t chunk = std::max<int64_t>(1, max_hidden_floats / std::max<int64_t>(max_inter, 1));
  for (int64_t tb = 0; tb < T; tb += chunk)
    run_chunk(ctx, x.ptr<const float>(), H, ids, topk_weights.ptr<const float>(), K, tb,
              std::min(T, tb + chunk), experts, shared, out.ptr<float>());
}

void mlp(const CpuContext& ctx, const Tensor& x, const MlpWeights& w, const Tensor& out,
         int64_t max_hidden_floats) {
  check_x_out(x, out, "mlp");
  const int64_t T = x.dim(0), H = x.dim(1);
  if (T == 0) return;
  const int64_t I = std::max<int64_t>(1, w.gate_proj.weight.rank() == 2 ? w.gate_proj.out_features() : 1);
  const int64_t chunk = std::max<int64_t>(1, max_hidden_floats / I);
  float* o = out.ptr<float>();
  std::fill(o, o + T * H, 0.0f);
  for (int64_t tb = 0; tb < T; tb += chunk) {
    ExpertBatch b;
    add_all_tokens(b, w, tb, std::min(T, tb + chunk), H, "mlp");
    run_batch(ctx, x.ptr<const float>(), H, b, o);
  }
}

}  // namespace tandem::ops::cpu
