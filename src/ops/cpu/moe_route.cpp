// MoE router (model-spec.md §2). Sigmoid scoring follows HF Glm4MoeTopkRouter / DeepSeek-V3 noaux_tc:
// the correction bias and the group limit steer selection only, the mixing weights come from the plain
// sigmoid. Softmax scoring follows HF Qwen2Moe / Qwen3-Next.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ops/cpu/cpu_ops.h"

namespace tandem::ops::cpu {
namespace {

/// The k largest entries of score: highest first, ties broken towards the lower index.
void top_k(const std::vector<float>& score, int k, std::vector<int32_t>& order, int32_t* out) {
  order.resize(score.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
    return score[a] > score[b] || (score[a] == score[b] && a < b);
  });
  std::copy(order.begin(), order.begin() + k, out);
}

}  // namespace

void moe_route(const CpuContext& ctx, const Tensor& logits, const Tensor& correction_bias,
               const MoeRouting& routing, const Tensor& topk_ids, const Tensor& topk_weights) {
  TANDEM_CHECK(logits.dtype == DType::kF32 && logits.rank() == 2,
               "moe_route: logits must be f32 [T, E], got {} {}", dtype_name(logits.dtype),
               logits.shape.str());
  const int64_t T = logits.dim(0), E = logits.dim(1);
  const int K = routing.top_k;
  TANDEM_CHECK(K > 0 && K <= E, "moe_route: top_k {} must be in [1, {}] experts", K, E);
  TANDEM_CHECK(topk_ids.dtype == DType::kI32 && topk_ids.numel() == T * K,
               "moe_route: topk_ids must be i32 [{}, {}], got {} {}", T, K, dtype_name(topk_ids.dtype),
               topk_ids.shape.str());
  TANDEM_CHECK(topk_weights.dtype == DType::kF32 && topk_weights.numel() == T * K,
               "moe_route: topk_weights must be f32 [{}, {}], got {} {}", T, K,
               dtype_name(topk_weights.dtype), topk_weights.shape.str());
  const bool sigmoid = routing.scoring == MoeScoring::kSigmoid;
  if (!correction_bias.empty()) {
    TANDEM_CHECK(sigmoid, "moe_route: a correction bias is only defined for sigmoid scoring");
    TANDEM_CHECK(correction_bias.dtype == DType::kF32 && correction_bias.numel() == E,
                 "moe_route: correction_bias must be f32 [{}], got {} {}", E,
                 dtype_name(correction_bias.dtype), correction_bias.shape.str());
  }
  const int n_group = std::max(routing.n_group, 1);
  if (n_group > 1) {
    TANDEM_CHECK(sigmoid, "moe_route: grouped selection (n_group {}) is only defined for sigmoid scoring",
                 n_group);
    TANDEM_CHECK(E % n_group == 0 && E / n_group >= 2,
                 "moe_route: {} experts do not split into {} groups of at least 2", E, n_group);
    TANDEM_CHECK(routing.topk_group >= 1 && routing.topk_group <= n_group,
                 "moe_route: topk_group {} must be in [1, n_group {}]", routing.topk_group, n_group);
  }
  const int64_t group_size = E / n_group;
  const float* bias = correction_bias.empty() ? nullptr : correction_bias.ptr<const float>();

  ctx.pool->parallel_for(T, grain_for(E * 8), [&](int64_t tb, int64_t te) {
    std::vector<float> prob(static_cast<size_t>(E)), choice(static_cast<size_t>(E));
    std::vector<float> group_score(static_cast<size_t>(n_group));
    std::vector<int32_t> order, kept_groups(static_cast<size_t>(n_group));
    std::vector<char> keep(static_cast<size_t>(n_group));
    for (int64_t t = tb; t < te; ++t) {
      const float* l = logits.ptr<const float>() + t * E;
      if (sigmoid) {
        for (int64_t e = 0; e < E; ++e) prob[e] = 1.0f / (1.0f + std::exp(-l[e]));
      } else {
        const float mx = *std::max_element(l, l + E);
        float s = 0.0f;
        for (int64_t e = 0; e < E; ++e) s += prob[e] = std::exp(l[e] - mx);
        for (int64_t e = 0; e < E; ++e) prob[e] /= s;
      }
      for (int64_t e = 0; e < E; ++e) choice[e] = bias ? prob[e] + bias[e] : prob[e];
      if (n_group > 1) {
        // Group score = sum of its two best choice scores; experts outside the topk_group best groups get
        // choice score 0.0 (HF masked_fill(~mask, 0.0)), not -inf: they can still win against negative
        // scores.
        for (int g = 0; g < n_group; ++g) {
          const float* c = choice.data() + g * group_size;
          float first = c[0], second = c[1];
          if (second > first) std::swap(first, second);
          for (int64_t i = 2; i < group_size; ++i) {
            if (c[i] > first) {
              second = first;
              first = c[i];
            } else if (c[i] > second) {
              second = c[i];
            }
          }
          group_score[g] = first + second;
        }
        top_k(group_score, routing.topk_group, order, kept_groups.data());
        std::fill(keep.begin(), keep.end(), 0);
        for (int i = 0; i < routing.topk_group; ++i) keep[kept_groups[i]] = 1;
        for (int64_t e = 0; e < E; ++e)
          if (!keep[e / group_size]) choice[e] = 0.0f;
      }
      int32_t* ids = topk_ids.ptr<int32_t>() + t * K;
      float* w = topk_weights.ptr<float>() + t * K;
      top_k(choice, K, order, ids);
      float total = 0.0f;
      for (int k = 0; k < K; ++k) total += w[k] = prob[ids[k]];
      if (routing.norm_topk_prob) {
        // Sigmoid weights do not sum to one, so DeepSeek/GLM guard the division; softmax (Qwen) does not.
        const float denom = sigmoid ? total + 1e-20f : total;
        for (int k = 0; k < K; ++k) w[k] /= denom;
      }
      for (int k = 0; k < K; ++k) w[k] *= routing.routed_scaling_factor;
    }
  });
}

}  // namespace tandem::ops::cpu
