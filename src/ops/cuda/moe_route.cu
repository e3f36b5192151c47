// MoE router, one warp per token, following the CPU backend's moe_route.cpp step for step.
// Sigmoid scoring (DeepSeek-V3 / Glm4Moe noaux_tc): prob = 1 / (1 + exp(-logit)); the correction bias is
// added for selection only; with n_group > 1 a group scores the sum of its two best biased scores, the
// topk_group best groups are kept and every other expert's selection score becomes 0.0 (not -inf, as HF's
// masked_fill). Softmax scoring (Qwen): max-shifted exp, summed in expert order by one lane (the CPU's
// sequential sum, so the bits agree). The weights are the unbiased probs of the chosen experts, summed in
// rank order, renormalised (sigmoid: / (sum + 1e-20)) when norm_topk_prob, and scaled by
// routed_scaling_factor. exp is evaluated in double and rounded once to f32 (glibc's expf but for rare
// near-midpoint cases).
//
// Top-k is K rounds of a warp argmax under a total order: score descending, then index ascending, with -0
// equal to +0 and NaN below every number. For NaN-free scores that is exactly the CPU's partial_sort result.
// Lane l keeps experts l, l + 32, ... in registers with its best untaken one cached; a round is two warp max
// reductions (redux.sync) over (score key, ~index), after which only the winning lane rescans its experts.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ops/cuda/kernels.h"

namespace tandem::ops::cuda {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kMaxPerLane = 32;  // E <= 1024
constexpr int kMaxGroups = kWarp;
constexpr int kSumBatch = 8;
constexpr int64_t kMaxGrid = int64_t{1} << 20;  // token loops stride past this many blocks

/// A score as an unsigned key in the ranking order: larger key = ranks first. Numbers map monotonically into
/// [0x007fffff (-inf), 0xff800000 (+inf)] with -0 taken as +0; NaN maps to 1, below them all; 0 is "none".
__device__ __forceinline__ uint32_t score_key(float score) {
  if (isnan(score)) return 1u;
  const uint32_t bits = __float_as_uint(score == 0.0f ? 0.0f : score);
  return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

/// The winner among the lanes' candidates (key, index), key 0 meaning none: the highest key, then the lowest
/// index. Returns the index to every lane, or -1 when no lane has a candidate.
__device__ __forceinline__ int warp_winner(uint32_t key, int index) {
  const uint32_t best_key = __reduce_max_sync(kFullMask, key);
  const uint32_t best_lo =
      __reduce_max_sync(kFullMask, key == best_key && key != 0 ? ~static_cast<uint32_t>(index) : 0u);
  return best_key == 0 ? -1 : static_cast<int>(~best_lo);
}

/// This lane's best untaken slot (lowest slot on equal keys, i.e. lowest expert index), or -1.
template <int kPerLane>
__device__ __forceinline__ int lane_best(const uint32_t (&key)[kPerLane], uint32_t taken) {
  int best = -1;
  uint32_t best_key = 0;
#pragma unroll
  for (int k = 0; k < kPerLane; ++k)
    if (!(taken >> k & 1u) && key[k] > best_key) {
      best_key = key[k];
      best = k;
    }
  return best;
}

__device__ __forceinline__ float exp_f32(float x) {
  return static_cast<float>(exp(static_cast<double>(x)));
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

/// The CPU's top-2 scan of one group: the sum of its two largest scores. c: [group_size >= 2] (shared).
__device__ float group_top2_sum(const float* c, int group_size) {
  float first = c[1] > c[0] ? c[1] : c[0], second = c[1] > c[0] ? c[0] : c[1];
  for (int i = 2; i < group_size; ++i) {
    if (c[i] > first) {
      second = first;
      first = c[i];
    } else if (c[i] > second) {
      second = c[i];
    }
  }
  return __fadd_rn(first, second);
}

// One warp (block of 32) per token; lane l owns experts e = l + 32 * k, k < kPerLane (E <= 32 * kPerLane).
// Shared: prob [E] f32 (the weights' source and the softmax sum's input), choice [E] f32 (group scans).
template <int kPerLane>
__global__ void __launch_bounds__(kWarp)
    moe_route_kernel(const float* logits,  // [T, E]
                     int64_t T, int E,
                     const float* bias,  // [E] or null
                     int top_k, int n_group, int topk_group, bool norm_topk_prob, float routed_scaling_factor,
                     bool sigmoid,
                     int32_t* topk_ids,      // [T, top_k]
                     float* topk_weights) {  // [T, top_k]
  extern __shared__ float smem[];
  float* prob = smem;
  float* choice = smem + E;
  const int lane = static_cast<int>(threadIdx.x);

  for (int64_t t = blockIdx.x; t < T; t += gridDim.x) {
    const float* l = logits + t * E;
    float p[kPerLane];
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const int e = lane + kWarp * k;
      p[k] = e < E ? l[e] : -INFINITY;
    }
    if (sigmoid) {
#pragma unroll
      for (int k = 0; k < kPerLane; ++k) p[k] = __fdiv_rn(1.0f, __fadd_rn(1.0f, exp_f32(-p[k])));
    } else {
      float mx = -INFINITY;
#pragma unroll
      for (int k = 0; k < kPerLane; ++k) mx = fmaxf(mx, p[k]);
      mx = warp_max(mx);
#pragma unroll
      for (int k = 0; k < kPerLane; ++k) {
        const int e = lane + kWarp * k;
        p[k] = exp_f32(__fsub_rn(p[k], mx));
        if (e < E) prob[e] = p[k];
      }
      __syncwarp();
      float sum = 0.0f;
      if (lane == 0) {  // in expert order; loads go ahead in batches of kSumBatch so only the adds serialise
        for (int e0 = 0; e0 < E; e0 += kSumBatch) {
          float v[kSumBatch];
#pragma unroll
          for (int u = 0; u < kSumBatch; ++u) v[u] = e0 + u < E ? prob[e0 + u] : 0.0f;
#pragma unroll
          for (int u = 0; u < kSumBatch; ++u)
            if (e0 + u < E) sum = __fadd_rn(sum, v[u]);
        }
      }
      sum = __shfl_sync(kFullMask, sum, 0);
#pragma unroll
      for (int k = 0; k < kPerLane; ++k) p[k] = __fdiv_rn(p[k], sum);
    }

    float c[kPerLane];  // selection scores
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const int e = lane + kWarp * k;
      c[k] = p[k];
      if (e < E) {
        if (bias) c[k] = __fadd_rn(c[k], bias[e]);
        prob[e] = p[k];
        choice[e] = c[k];
      }
    }
    __syncwarp();

    if (n_group > 1) {
      const int group_size = E / n_group;
      const uint32_t group_key =
          lane < n_group ? score_key(group_top2_sum(choice + lane * group_size, group_size)) : 0u;
      uint32_t kept = 0;  // bit g: group g is kept
      for (int i = 0; i < topk_group; ++i) {
        const int g = warp_winner(kept >> lane & 1u ? 0u : group_key, lane);
        kept |= 1u << g;
      }
#pragma unroll
      for (int k = 0; k < kPerLane; ++k) {
        const int e = lane + kWarp * k;
        if (e < E && !(kept >> (e / group_size) & 1u)) c[k] = 0.0f;
      }
    }

    uint32_t key[kPerLane];
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) key[k] = lane + kWarp * k < E ? score_key(c[k]) : 0u;
    uint32_t taken = 0;  // bit k: slot k is chosen
    int slot = lane_best(key, taken);
    float total = 0.0f;
    for (int r = 0; r < top_k; ++r) {
      uint32_t my_key = 0;
#pragma unroll
      for (int k = 0; k < kPerLane; ++k)
        if (k == slot) my_key = key[k];
      const int id = warp_winner(my_key, lane + kWarp * slot);
      if (id % kWarp == lane) {  // the owner drops its chosen expert and finds its next best
        taken |= 1u << (id / kWarp);
        slot = lane_best(key, taken);
      }
      if (lane == 0) {  // rank order: the CPU sums the chosen probs in this order
        const float w = prob[id];
        topk_ids[t * top_k + r] = id;
        topk_weights[t * top_k + r] = w;
        total = __fadd_rn(total, w);
      }
    }
    if (lane == 0) {
      const float denom = sigmoid ? __fadd_rn(total, 1e-20f) : total;
      for (int r = 0; r < top_k; ++r) {
        float w = topk_weights[t * top_k + r];
        if (norm_topk_prob) w = __fdiv_rn(w, denom);
        topk_weights[t * top_k + r] = __fmul_rn(w, routed_scaling_factor);
      }
    }
    __syncwarp();  // the next token rewrites prob and choice
  }
}

template <int kPerLane>
void launch(unsigned blocks, size_t smem, cudaStream_t stream, const float* logits, int64_t T, int E,
            const float* bias, int top_k, int n_group, int topk_group, bool norm, float rsf, bool sigmoid,
            int32_t* ids, float* weights) {
  moe_route_kernel<kPerLane><<<blocks, kWarp, smem, stream>>>(logits, T, E, bias, top_k, n_group, topk_group,
                                                              norm, rsf, sigmoid, ids, weights);
}

}  // namespace

cudaError_t moe_route(const float* logits, int64_t T, int E, const float* correction_bias, int top_k,
                      int n_group, int topk_group, bool norm_topk_prob, float routed_scaling_factor,
                      int scoring, int32_t* topk_ids, float* topk_weights, cudaStream_t stream) {
  if (T <= 0) return cudaSuccess;
  n_group = std::max(n_group, 1);
  if (E <= 0 || E > kWarp * kMaxPerLane || top_k < 1 || top_k > E || (scoring != 0 && scoring != 1))
    return cudaErrorInvalidValue;
  if (n_group > 1 &&
      (n_group > kMaxGroups || E % n_group != 0 || E / n_group < 2 || topk_group < 1 || topk_group > n_group))
    return cudaErrorInvalidValue;
  const unsigned blocks = static_cast<unsigned>(std::min(T, kMaxGrid));
  const size_t smem = 2 * static_cast<size_t>(E) * sizeof(float);
  const int per_lane = (E + kWarp - 1) / kWarp;
  const auto run = [&](auto launcher) {
    launcher(blocks, smem, stream, logits, T, E, correction_bias, top_k, n_group, topk_group, norm_topk_prob,
             routed_scaling_factor, scoring == 0, topk_ids, topk_weights);
  };
  if (per_lane <= 1)
    run(launch<1>);
  else if (per_lane <= 2)
    run(launch<2>);
  else if (per_lane <= 4)
    run(launch<4>);
  else if (per_lane <= 8)
    run(launch<8>);
  else if (per_lane <= 16)
    run(launch<16>);
  else
    run(launch<32>);
  return cudaGetLastError();
}

}  // namespace tandem::ops::cuda
