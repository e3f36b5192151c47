// The CPU implementations of the Backend ops (see ops.h for the contracts). CpuBackend forwards to these;
// each family lives in its own file.
#pragma once

#include <span>

#include "ops/cpu/cpu_context.h"
#include "ops/cpu/linear.h"

namespace tandem::ops::cpu {

// data_movement.cpp
void copy_cols(const Tensor& src, int64_t src_col, const Tensor& dst, int64_t dst_col, int64_t n_cols);
void gather_rows(const Tensor& src, const Tensor& rows, const Tensor& dst);
void copy_rows(const Tensor& src, const Tensor& src_rows, const Tensor& dst, const Tensor& dst_rows);
void mul_sigmoid(const Tensor& x, const Tensor& gate, const Tensor& out);
void argmax_rows(const CpuContext& ctx, const Tensor& logits, const Tensor& ids);

// fill_random.cpp
/// Backend::fill_random: ops/fill_random.h's values, the elements split over the pool's threads.
void fill_random(const CpuContext& ctx, const Tensor& t, uint64_t seed, float lo, float hi);

// elementwise.cpp
void embedding(const CpuContext& ctx, std::span<const int32_t> ids, const Tensor& table, const Tensor& out);
void silu_mul(const CpuContext& ctx, const Tensor& gate, const Tensor& up, const Tensor& out);
void add(const CpuContext& ctx, const Tensor& a, const Tensor& b, const Tensor& out);

// norm_rope.cpp
void rms_norm(const CpuContext& ctx, const Tensor& x, const Tensor& weight, float eps, bool unit_offset,
              const Tensor& out);
void rope_neox(const CpuContext& ctx, const Tensor& x, std::span<const int32_t> positions, int rot_dim,
               float theta);

// attention.cpp
/// f32 -> float8_e4m3fn as kv_store rounds it: nearest-even, saturating to +-448, NaN to 0x7f. Bit for bit
/// core's f32_to_f8e4m3 (the reference; checked by ops_cpu_test), without its libm calls.
uint8_t kv_f32_to_f8e4m3(float f);
void kv_store(const CpuContext& ctx, const Tensor& k, const Tensor& v, const KvLayerView& kv,
              std::span<const SeqSlice> seqs);
void attention(const CpuContext& ctx, const Tensor& q, const KvLayerView& kv, std::span<const SeqSlice> seqs,
               float scale, const Tensor& out);

// moe_route.cpp
void moe_route(const CpuContext& ctx, const Tensor& logits, const Tensor& correction_bias,
               const MoeRouting& routing, const Tensor& topk_ids, const Tensor& topk_weights);

// moe_experts.cpp
/// Default cap on moe_experts' intermediate buffer ([token-expert assignments, I] f32, 128 MiB): larger
/// batches run in token chunks, each reading the selected experts once.
inline constexpr int64_t kMoeMaxHiddenFloats = int64_t{1} << 25;
void moe_experts(const CpuContext& ctx, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                 std::span<const MlpWeights> experts, const MlpWeights* shared, const Tensor& out,
                 int64_t max_hidden_floats = kMoeMaxHiddenFloats);
/// Backend::mlp: the dense MLP as one expert that every token takes with weight 1.
void mlp(const CpuContext& ctx, const Tensor& x, const MlpWeights& w, const Tensor& out,
         int64_t max_hidden_floats = kMoeMaxHiddenFloats);

/// Grain for parallel_for over n items of `item_cost` units of work each, so that a thread gets at least
/// ~64K units (below that, waking a worker costs more than the work).
int64_t grain_for(int64_t item_cost);

}  // namespace tandem::ops::cpu
