#include "models/layers/attention.h"

#include <cmath>

#include "models/layers/row_split.h"

namespace tandem::models {

void attention_forward(const StepContext& ctx, const AttentionOptions& opt, const AttentionWeights& w,
                       const ops::KvLayerView& kv, const Tensor& x, const Tensor& out) {
  ops::Backend& be = ctx.backend;
  const int64_t T = x.dim(0);
  const int64_t Hq = opt.n_heads, Hkv = opt.n_kv_heads, D = opt.head_dim;

  Arena& arena = ctx.arena;
  const Tensor q = arena.alloc(DType::kF32, {T, Hq, D});   // [T, Hq, D]
  const Tensor k = arena.alloc(DType::kF32, {T, Hkv, D});  // [T, Hkv, D]
  const Tensor v = arena.alloc(DType::kF32, {T, Hkv, D});  // [T, Hkv, D]
  Tensor gate;                                             // [T, Hq, D], with output_gate
  Tensor qg;                                               // [T * Hq, 2D], with output_gate
  if (opt.output_gate) qg = arena.alloc(DType::kF32, {T * Hq, 2 * D});
  {
    // q_proj rows are laid out per head as [q(D) | gate(D)] with output_gate (Qwen3-Next gated attention).
    const ops::LinearWeight* ws[] = {&w.q_proj, &w.k_proj, &w.v_proj};
    const Tensor ys[] = {opt.output_gate ? qg.reshape({T, Hq * 2 * D}) : q.reshape({T, Hq * D}),
                         k.reshape({T, Hkv * D}), v.reshape({T, Hkv * D})};
    split_linears(ctx, x, ws, ys);
  }
  if (opt.output_gate) {
    gate = arena.alloc(DType::kF32, {T, Hq, D});
    be.copy_cols(qg, 0, q.reshape({T * Hq, D}), 0, D);
    be.copy_cols(qg, D, gate.reshape({T * Hq, D}), 0, D);
  }

  if (opt.qk_norm) {
    const Tensor qr = q.reshape({T * Hq, D});
    const Tensor kr = k.reshape({T * Hkv, D});
    be.rms_norm(qr, w.q_norm, opt.rms_norm_eps, opt.unit_offset_norm, qr);
    be.rms_norm(kr, w.k_norm, opt.rms_norm_eps, opt.unit_offset_norm, kr);
  }
  if (opt.rot_dim > 0) {
    be.rope_neox(q, ctx.state.positions, opt.rot_dim, opt.rope_theta);
    be.rope_neox(k, ctx.state.positions, opt.rot_dim, opt.rope_theta);
  }
  be.kv_store(k, v, kv, ctx.state);

  const Tensor o = arena.alloc(DType::kF32, {T, Hq, D});  // [T, Hq, D]
  be.attention(q, kv, ctx.state, 1.0f / std::sqrt(static_cast<float>(D)), o);
  if (opt.output_gate) be.mul_sigmoid(o.reshape({T, Hq * D}), gate.reshape({T, Hq * D}),
                                      o.reshape({T, Hq * D}));
  split_linear(ctx, o.reshape({T, Hq * D}), w.o_proj, out);
}

}  // namespace tandem::models
