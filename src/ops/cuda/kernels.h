// The CUDA kernels' launchers, one .cu file per op family. This header is the whole interface between the
// kernels (compiled by nvcc) and CudaBackend (compiled by the C++ compiler): plain pointers, sizes and POD
// descriptors only, so no tandem header (fmt, Tensor) enters device code. CudaBackend checks shapes and
// dtypes and names the op in every error; a launcher enqueues its kernel(s) on `stream` without
// synchronising and returns cudaGetLastError() (a bad launch configuration), which the backend checks.
//
// Layouts: activations are f32 row-major; ids i32; each comment names the ops::Backend op whose semantics
// (ops/ops.h) the launcher implements, and the CPU backend is the reference the parity tests compare against.
//
// Batch invariance (docs/architecture.md): a row's result never depends on how many rows share the call.
// Each output element is reduced in an order fixed by the sizes along the reduced dimension only — never by
// T, the number of sequences or the grid size — so a verify pass of K+1 rows reproduces K+1 decode steps bit
// for bit, and a request's output does not depend on its neighbours in the batch.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace tandem::ops::cuda {

/// Element type of a weight or KV cache as kernels see it.
enum class Elem : uint8_t { kF32, kBF16, kF16, kF8E4M3 };
/// ops::WeightQuant, for kernels.
enum class Quant : uint8_t { kNone, kFp8Tensor, kFp8Channel, kFp8Block };

/// A linear layer as one kernel argument. Weight [out, in] row-major; dequantised element
/// W[o][i] = Wq[o][i] * scale(o, i): kFp8Tensor scale[0], kFp8Channel scale[o],
/// kFp8Block scale[(o / block_out) * scale_cols + i / block_in].
struct DeviceLinear {
  const void* weight = nullptr;  // [out, in] elem
  const float* scale = nullptr;  // fp8 only (see above)
  const float* bias = nullptr;   // [out] f32, or null
  int64_t out = 0;
  int64_t in = 0;
  Elem elem = Elem::kBF16;  // kF32 | kBF16 | kF16 | kF8E4M3
  Quant quant = Quant::kNone;
  int block_out = 0;        // kFp8Block
  int block_in = 0;         // kFp8Block
  int64_t scale_cols = 0;   // kFp8Block: ceil(in / block_in)
};

/// A layer's routed experts: device arrays of DeviceLinear indexed by expert id, so a kernel picks an
/// expert's weights from a device-side id. All experts share elem and quant (checked when the table is built).
struct ExpertTable {
  const DeviceLinear* gate = nullptr;  // [E] device array; each gate_proj [I, H]
  const DeviceLinear* up = nullptr;    // [E] device array; each up_proj [I, H]
  const DeviceLinear* down = nullptr;  // [E] device array; each down_proj [H, I]
  int n_experts = 0;
  int64_t hidden = 0;        // H
  int64_t intermediate = 0;  // I
  Elem elem = Elem::kBF16;
  Quant quant = Quant::kNone;
};

/// ops::KvLayerView for kernels: K and V each [n_blocks, block_size, n_kv_heads, head_dim] of elem
/// (kF32 | kBF16 | kF8E4M3); an fp8 element e of kv head g stands for e * k_scale[g] (v_scale[g]).
struct DeviceKv {
  void* k = nullptr;
  void* v = nullptr;
  int64_t n_blocks = 0;
  int block_size = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  Elem elem = Elem::kF32;
  const float* k_scale = nullptr;  // [n_kv_heads], fp8 only
  const float* v_scale = nullptr;  // [n_kv_heads], fp8 only
};

/// ops::StepState for kernels (all device i32).
struct DeviceStep {
  const int32_t* positions = nullptr;     // [T]
  const int32_t* seq_info = nullptr;      // [S, 3]: token_begin, n_tokens, start_pos
  const int32_t* block_tables = nullptr;  // [S, max_blocks], padded with -1
  int64_t n_tokens = 0;                   // T
  int64_t n_seqs = 0;                     // S
  int64_t max_blocks = 0;
};

// --- linear.cu ---------------------------------------------------------------------------------------------
/// ops::Backend::linear: y[T, out] = x[T, in] @ W^T (+ bias). The weight is read once per group of rows.
cudaError_t linear(const float* x, int64_t T, const DeviceLinear& w, float* y, cudaStream_t stream);

// --- prefill.cu --------------------------------------------------------------------------------------------
// The element-wise stages around the cuBLASLt GEMM of a prefill linear (prefill_gemm.h): bf16 operands in, the
// fp8 scale and the bias out. bf16 values are passed as their uint16_t bits. An f32 value v enters the GEMM as the
// two-term split v = hi + lo, hi = bf16(v), lo = bf16(v - hi) (16 significant bits, relative error <= 2^-16).
/// xb[t, j] = hi(x[t, j]) and xb[T + t, j] = lo(x[t, j]) for j < in, 0 for in <= j < ld. x [T, in] f32, xb [2T, ld].
cudaError_t to_bf16_split_rows(const float* x, int64_t T, int64_t in, uint16_t* xb, int64_t ld,
                               cudaStream_t stream);
/// wb[p * out + o, i] = term p < parts of the weight element W[o][i] for i < in, 0 for in <= i < ld; wb
/// [parts * out, ld]. kBF16: copied (parts 1). kF8E4M3 with kFp8Tensor / kFp8Channel: the stored value, exact,
/// WITHOUT its scale (prefill_epilogue applies it; parts 1). kFp8Block: the stored value times its block's scale
/// (f32 multiply), split in parts = 2 terms. Other element types give cudaErrorInvalidValue without a launch.
cudaError_t weight_to_bf16(const DeviceLinear& w, uint16_t* wb, int64_t ld, int parts, cudaStream_t stream);
/// y[t, o] = (sum over the x and W terms of d) * s(o) + bias[o], y [T, out] (ld out); d [2T, w_parts * out]: the
/// GEMM of xb with every W term, summed smallest first. s: the kFp8Tensor / kFp8Channel scale, else 1; bias
/// absent: + -0.0 (the GEMV's finish, gemv.cuh).
cudaError_t prefill_epilogue(const float* d, int w_parts, float* y, int64_t T, const DeviceLinear& w,
                             cudaStream_t stream);
/// p[i] = a bf16 value in [-1, 1) hashed from (seed, i): GEMM-rate probe operands (random bits cost the tensor
/// cores more power than zeros, so a probe on zeros would overstate the rate).
cudaError_t fill_bf16_hash(uint16_t* p, int64_t n, uint32_t seed, cudaStream_t stream);

// --- moe_experts.cu ----------------------------------------------------------------------------------------
/// ops::Backend::moe_experts: out[t] += sum_k topk_weights[t, k] * expert[topk_ids[t, k]](x[t]), then
/// + shared(x[t]) when shared_gate is non-null. x, out [T, H]; topk_ids, topk_weights [T, K].
/// `scratch` holds moe_experts_scratch_bytes(...) bytes of device memory.
size_t moe_experts_scratch_bytes(int64_t T, int K, const ExpertTable& experts, int64_t shared_intermediate);
cudaError_t moe_experts(const float* x, int64_t T, const int32_t* topk_ids, const float* topk_weights, int K,
                        const ExpertTable& experts, const DeviceLinear* shared_gate, const DeviceLinear* shared_up,
                        const DeviceLinear* shared_down, float* out, void* scratch, cudaStream_t stream);

// --- attention.cu ------------------------------------------------------------------------------------------
/// ops::Backend::kv_store: k, v [T, Hkv, D] f32 into the cache at the step's positions.
cudaError_t kv_store(const float* k, const float* v, const DeviceKv& kv, const DeviceStep& step,
                     cudaStream_t stream);
/// ops::Backend::attention: q [T, Hq, D] -> out [T, Hq, D], causal over the paged cache.
/// `scratch` holds attention_scratch_bytes(...) bytes (split-KV partials; may be 0).
size_t attention_scratch_bytes(int64_t T, int Hq, int head_dim, const DeviceStep& step, const DeviceKv& kv);
cudaError_t attention(const float* q, int64_t T, int Hq, const DeviceKv& kv, const DeviceStep& step, float scale,
                      float* out, void* scratch, cudaStream_t stream);

// --- elementwise.cu ----------------------------------------------------------------------------------------
cudaError_t add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream);
/// out = silu(gate) * up, n elements.
cudaError_t silu_mul(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream);
/// out[r, j] = x[r, j] * sigmoid(gate[r, gate_cols == 1 ? 0 : j]); x, out [R, n], gate [R, gate_cols].
cudaError_t mul_sigmoid(const float* x, const float* gate, int64_t gate_cols, float* out, int64_t R, int64_t n,
                        cudaStream_t stream);
/// dst[r, dst_col + j] = src[r, src_col + j], j < n_cols; src [R, src_stride], dst [R, dst_stride] f32.
cudaError_t copy_cols(const float* src, int64_t src_stride, int64_t src_col, float* dst, int64_t dst_stride,
                      int64_t dst_col, int64_t R, int64_t n_cols, cudaStream_t stream);
/// dst[i, :] = src[rows[i], :] for i < n; rows of `row_bytes` bytes (f32 or i32 rows).
cudaError_t gather_rows(const void* src, const int32_t* rows, void* dst, int64_t n, int64_t row_bytes,
                        cudaStream_t stream);
/// dst[dst_rows[i], :] = src[src_rows[i], :] for i < n; rows of `row_bytes` bytes.
cudaError_t copy_rows(const void* src, const int32_t* src_rows, void* dst, const int32_t* dst_rows, int64_t n,
                      int64_t row_bytes, cudaStream_t stream);
/// out[i, :] = table[ids[i], :] as f32; table [V, H] elem (kF32 | kBF16 | kF16). An id outside [0, V)
/// writes a row of NaN (the host never reads device ids; the engine validates ids before upload).
cudaError_t embedding(const int32_t* ids, int64_t n, const void* table, Elem elem, int64_t V, int64_t H, float* out,
                      cudaStream_t stream);

// --- norm_rope.cu ------------------------------------------------------------------------------------------
/// ops::Backend::rms_norm over R rows of D; weight [D] elem (kF32 | kBF16 | kF16). out may alias x.
cudaError_t rms_norm(const float* x, const void* weight, Elem elem, float eps, bool unit_offset, float* out,
                     int64_t R, int64_t D, cudaStream_t stream);
/// ops::Backend::rope_neox in place: x [T, heads, D], positions [T].
cudaError_t rope_neox(float* x, const int32_t* positions, int64_t T, int64_t heads, int64_t D, int rot_dim,
                      float theta, cudaStream_t stream);

// --- moe_route.cu ------------------------------------------------------------------------------------------
/// ops::Backend::moe_route: logits [T, E] -> topk_ids [T, top_k] i32, topk_weights [T, top_k] f32.
/// correction_bias [E] f32 or null. scoring: 0 sigmoid, 1 softmax.
cudaError_t moe_route(const float* logits, int64_t T, int E, const float* correction_bias, int top_k, int n_group,
                      int topk_group, bool norm_topk_prob, float routed_scaling_factor, int scoring,
                      int32_t* topk_ids, float* topk_weights, cudaStream_t stream);

// --- argmax.cu ---------------------------------------------------------------------------------------------
/// ids[r] = argmax_v logits[r, v], lowest index on ties. logits [R, V].
cudaError_t argmax_rows(const float* logits, int64_t R, int64_t V, int32_t* ids, cudaStream_t stream);

// --- fill_random.cu ----------------------------------------------------------------------------------------
/// ops::Backend::fill_random: data[i] = ops/fill_random.h's value of (seed, i) in [lo, hi), rounded to elem, for
/// i < n. data [n] elem (kF32 | kBF16 | kF16 | kF8E4M3).
cudaError_t fill_random(void* data, Elem elem, int64_t n, uint64_t seed, float lo, float hi, cudaStream_t stream);

}  // namespace tandem::ops::cuda
