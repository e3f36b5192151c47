// The backend seam. Model and engine code call these ops through a Backend reference and never touch a
// backend's kernels directly, so a CUDA backend can sit beside the CPU one without model changes.
//
// Conventions: activations are f32, row-major; weights are read in their stored dtype (bf16, f16, f32, or
// f8_e4m3 with an f32 scale). Every op states its shapes; `out` tensors are preallocated by the caller.
// Memory: every tensor an op takes is on the backend's device (weights may be host memory on the CPU-side
// backends). Host code never dereferences device data: it moves through upload() and to_host(). Allocation
// is uninitialised; fill_zero() where zeros are needed (fill_random() for seeded pseudo-random weights).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "ops/step.h"
#include "tensor/arena.h"
#include "tensor/tensor.h"

namespace tandem::ops {

enum class WeightQuant : uint8_t {
  kNone,            // weight is bf16 / f16 / f32
  kFp8Tensor,       // f8_e4m3 weight, scale [1]
  kFp8Channel,      // f8_e4m3 weight, scale [out]            (compressed-tensors strategy=channel)
  kFp8Block,        // f8_e4m3 weight, scale [ceil(out/bo), ceil(in/bi)] (block strategy, DeepSeek fp8)
};

/// A Linear layer: y = x @ W^T (+ b). Dequantised element W[o][i] = Wq[o][i] * scale(o, i).
struct LinearWeight {
  Tensor weight;  // [out, in] bf16 | f16 | f32 | f8_e4m3
  Tensor scale;   // f32; see WeightQuant. Empty unless fp8.
  Tensor bias;    // [out] any float dtype, or empty
  WeightQuant quant = WeightQuant::kNone;
  int block_out = 0;  // kFp8Block only
  int block_in = 0;   // kFp8Block only

  int64_t out_features() const { return weight.dim(0); }
  int64_t in_features() const { return weight.dim(1); }
  /// Bytes of weight + scale + bias this layer reads per pass.
  size_t nbytes() const { return weight.nbytes() + scale.nbytes() + bias.nbytes(); }
};

/// One SwiGLU expert (routed or shared) or dense MLP: down(silu(gate(x)) * up(x)).
struct MlpWeights {
  LinearWeight gate_proj;  // [I, H]
  LinearWeight up_proj;    // [I, H]
  LinearWeight down_proj;  // [H, I]
};

/// One layer's paged KV storage. K and V are each [n_blocks, block_size, n_kv_heads, head_dim] of `dtype`:
/// f32, bf16 or f8_e4m3. An f8_e4m3 element e of kv head g stands for e * k_scale[g] (or v_scale[g]), vLLM's
/// k_scale / v_scale convention with one scale per (layer, kv head); f32 and bf16 views ignore the scales.
struct KvLayerView {
  void* k = nullptr;  // [n_blocks, block_size, n_kv_heads, head_dim] dtype
  void* v = nullptr;  // [n_blocks, block_size, n_kv_heads, head_dim] dtype
  int64_t n_blocks = 0;
  int block_size = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  DType dtype = DType::kF32;
  const float* k_scale = nullptr;  // [n_kv_heads] f32 (device); required for f8_e4m3
  const float* v_scale = nullptr;  // [n_kv_heads] f32 (device); required for f8_e4m3
};

enum class MoeScoring : uint8_t { kSigmoid, kSoftmax };

/// Router semantics of DeepSeek-V3 / Glm4Moe (sigmoid, bias for selection only, groups) and Qwen (softmax).
struct MoeRouting {
  int top_k = 0;
  int n_group = 1;
  int topk_group = 1;
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1.0f;
  MoeScoring scoring = MoeScoring::kSigmoid;
};

/// Up to this many rows linear() (the GEMV) is at least as fast as linear_prefill() (a GEMM where the backend
/// has one). Only for callers whose rows need not be exact, which pick the faster entry point by it (the MTP
/// draft, whose rows decide acceptance, never output).
inline constexpr int64_t kLinearExactRows = 16;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual Device device() const = 0;

  /// Whether linear() runs weights of this quantization natively. The draft precision policy asks this
  /// before keeping an fp8 draft as fp8.
  virtual bool supports(WeightQuant quant) const = 0;

  /// Measures this device's copy bandwidth now, in GB/s counting bytes read plus bytes written (the roofline that
  /// benchmarks report decode against, measured in the same run as the figure it divides).
  virtual double measure_copy_bandwidth_gbs() = 0;

  /// Measures this device's bf16 GEMM rate now, in TFLOP/s (2 m n k per product): y[m, n] f32 = x[m, k] @ W[n, k]^T
  /// with bf16 x and W and f32 accumulation, through the same library path that linear_prefill() takes.
  /// Benchmarks report prefill against it, measured in the same run. NaN where the backend has no such path (the
  /// CPU backends).
  virtual double measure_gemm_tflops(int64_t /*m*/, int64_t /*n*/, int64_t /*k*/) {
    return std::numeric_limits<double>::quiet_NaN();
  }

  /// Bytes of memory this device can still allocate (the host's MemAvailable for the CPU backends, free device
  /// memory for a GPU); 0 when unknown. The KV cache is sized from it after the weights are loaded.
  virtual size_t available_memory_bytes() = 0;

  /// The allocator of this backend's device memory (activation buffers, KV cache, step arenas).
  virtual Allocator& allocator() = 0;
  /// Prepares a linear's weights once at load, in place: the CPU converts a non-f32 bias to f32 so no call
  /// converts it again; a device backend uploads the weight. New buffers go to `owned` (kept by the model).
  virtual void load_linear(LinearWeight& w, std::vector<Buffer>& owned) = 0;
  /// Prepares a plain weight (norm weights, embedding table, router bias) once at load, in place: a device
  /// backend copies it to its memory (new buffers go to `owned`); the CPU reads the checkpoint mapping and
  /// leaves it. Model code never reads a weight's bytes after this.
  virtual void load_weight(Tensor& t, std::vector<Buffer>& owned) = 0;
  /// An uninitialised buffer on this backend's device.
  Buffer alloc(DType dtype, Shape shape) { return Buffer(allocator(), dtype, shape); }

  // --- data movement -----------------------------------------------------------------------------------------
  /// Copies host memory of dst.nbytes() bytes into the device tensor dst.
  virtual void upload(const void* src, const Tensor& dst) = 0;
  /// Copies a device tensor to host memory of the same size. The one way results reach the host.
  virtual void to_host(const Tensor& src, void* dst) = 0;
  /// Sets every byte of t to zero.
  virtual void fill_zero(const Tensor& t) = 0;
  /// Fills t with seeded pseudo-random values uniform in [lo, hi), rounded to t's dtype (f32, bf16, f16, or
  /// f8_e4m3 saturating at +-448; nearest-even): element i is ops/fill_random.h's value of (seed, i), the same
  /// bits on every backend, computed where t lives (no host copy). lo <= hi, both finite. Used by
  /// --load-format dummy (loader/dummy_weight_map.h) to make weights on the device.
  virtual void fill_random(const Tensor& t, uint64_t seed, float lo, float hi) = 0;
  /// dst[r, dst_col + j] = src[r, src_col + j] for j < n_cols. src [R, a] f32, dst [R, b] f32.
  virtual void copy_cols(const Tensor& src, int64_t src_col, const Tensor& dst, int64_t dst_col,
                         int64_t n_cols) = 0;
  /// dst[i, :] = src[rows[i], :]. rows [n] i32 (device); src [T, m], dst [n, m], both f32 or both i32.
  virtual void gather_rows(const Tensor& src, const Tensor& rows, const Tensor& dst) = 0;
  /// dst[dst_rows[i], :] = src[src_rows[i], :] for i < n. src_rows, dst_rows [n] i32 (device; dst rows distinct);
  /// src [T, m], dst [S, m], both f32 or both i32. Moves rows between two buffers in one pass.
  virtual void copy_rows(const Tensor& src, const Tensor& src_rows, const Tensor& dst, const Tensor& dst_rows) = 0;

  /// Builds the step's backend-resident metadata from the host batch: one upload per field, from `arena`.
  [[nodiscard]] StepState begin_step(const BatchDesc& batch, Arena& arena);

  // --- compute -----------------------------------------------------------------------------------------------
  /// y[T, out] = x[T, in] @ W^T + b. x, y f32. The weight is read once per call, whatever T is.
  /// The exact path, for decode and verify rows: the products use x as given (f32) and a row's bits do not depend
  /// on T or on the other rows of the call, so a verify pass gives the bits of the decode steps it replaces.
  virtual void linear(const Tensor& x, const LinearWeight& w, const Tensor& y) = 0;

  /// linear() for prefill rows. A backend may run a tensor-core GEMM here that enters x as the two-term bf16 split
  /// hi + lo for bf16 and fp8 weights (16 significant bits: relative error <= 2^-16 per element), and a
  /// block-scaled fp8 weight's dequantised elements likewise; f16 and f32 weights keep f32 x. A row's bits still do not depend on T or on the other rows (a prompt's
  /// rows give the same bits however the scheduler chunks it), but may differ from linear()'s: the model sends a
  /// step's decode / verify rows to linear() and its prefill rows here (models/layers/row_split.h), so neither
  /// kind of row depends on the other kind sharing its step. The default is linear().
  virtual void linear_prefill(const Tensor& x, const LinearWeight& w, const Tensor& y) { linear(x, w, y); }
  /// Whether linear_prefill() (and linears_prefill(), mlp_prefill()) may give other bits than linear(). When
  /// not, model code sends every row to linear() in one call (a mixed step reads each weight once).
  virtual bool prefill_linear_differs() const { return false; }

  /// ys[i] = x @ ws[i]^T + b_i for every i: several projections of the same x (q/k/v, gate/up) in one
  /// pass. Each result is what linear() gives. The default runs linear() for each.
  virtual void linears(const Tensor& x, std::span<const LinearWeight* const> ws, std::span<const Tensor> ys);
  /// linears() for prefill rows: each result is what linear_prefill() gives. The default runs linear_prefill()
  /// for each (linears() where prefill_linear_differs() is false).
  virtual void linears_prefill(const Tensor& x, std::span<const LinearWeight* const> ws, std::span<const Tensor> ys);

  /// out[T, H] = down(silu(gate(x)) * up(x)): a dense MLP. x, out f32 [T, H], separate. The default
  /// composes linears, silu_mul and linear (its temporaries come from alloc()).
  virtual void mlp(const Tensor& x, const MlpWeights& w, const Tensor& out);
  /// mlp() for prefill rows: the default composes linears_prefill, silu_mul and linear_prefill (mlp() where
  /// prefill_linear_differs() is false).
  virtual void mlp_prefill(const Tensor& x, const MlpWeights& w, const Tensor& out);

  /// out[n, H] = table[ids[i], :] as f32. ids [n] i32 (device), each < V (checked where the ids are read).
  virtual void embedding(const Tensor& ids, const Tensor& table, const Tensor& out) = 0;

  /// out[R, D] = x / sqrt(mean(x^2) + eps) * (unit_offset ? 1 + w : w). x, out f32 (may alias); w [D].
  virtual void rms_norm(const Tensor& x, const Tensor& weight, float eps, bool unit_offset,
                        const Tensor& out) = 0;

  /// In place NeoX half-split rotary embedding on the first rot_dim dims of every head.
  /// x [T, heads, D] f32; positions [T] i32 (device).
  virtual void rope_neox(const Tensor& x, const Tensor& positions, int rot_dim, float theta) = 0;

  /// Writes k, v [T, Hkv, D] f32 into the cache at each of the step's sequence positions, converted to the
  /// cache's dtype element by element (bf16: round-to-nearest-even; f8_e4m3: x / scale, saturating, nearest
  /// even). A stored element depends only on its own token's value, never on the rest of the batch.
  virtual void kv_store(const Tensor& k, const Tensor& v, const KvLayerView& kv, const StepState& step) = 0;

  /// Causal GQA attention over the paged cache (which already holds this batch's k/v), reading cache
  /// elements at their exact (scaled) values and computing in f32.
  /// q [T, Hq, D] f32 -> out [T, Hq, D] f32; q head h reads kv head h / (Hq / Hkv).
  virtual void attention(const Tensor& q, const KvLayerView& kv, const StepState& step, float scale,
                         const Tensor& out) = 0;

  /// out[T, I] = silu(gate) * up. All f32 [T, I]. out may alias gate.
  virtual void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out) = 0;

  /// out = a + b, elementwise f32 of equal shapes. out may alias a or b.
  virtual void add(const Tensor& a, const Tensor& b, const Tensor& out) = 0;

  /// out = x * sigmoid(gate). x, out [R, n] f32; gate [R, n] or [R, 1] (broadcast over the row) f32.
  virtual void mul_sigmoid(const Tensor& x, const Tensor& gate, const Tensor& out) = 0;

  /// Router: logits [T, E] f32 -> topk_ids [T, K] i32, topk_weights [T, K] f32 (final mixing weights,
  /// normalised and scaled). correction_bias [E] f32 or empty (selection only).
  virtual void moe_route(const Tensor& logits, const Tensor& correction_bias, const MoeRouting& routing,
                         const Tensor& topk_ids, const Tensor& topk_weights) = 0;

  /// out[T, H] += sum_k topk_weights[t, k] * experts[topk_ids[t, k]](x[t]) (+ shared(x[t]) after the
  /// routed sum when `shared` is non-null). Each selected expert's weights are read once per call (its
  /// tokens are batched). topk_ids are device data.
  virtual void moe_experts(const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                           std::span<const MlpWeights> experts, const MlpWeights* shared, const Tensor& out) = 0;

  /// ids[r] = argmax_v logits[r, v] (lowest index on ties). logits [R, V] f32, ids [R] i32 (device).
  virtual void argmax_rows(const Tensor& logits, const Tensor& ids) = 0;
};

/// CPU backend: AVX-512 / AVX2 kernels chosen at run time, threads from its own pool.
/// n_threads == 0: all hardware threads.
std::unique_ptr<Backend> make_cpu_backend(int n_threads = 0);

}  // namespace tandem::ops
