#include "models/layers/attention.h"

#include <cmath>

namespace tandem::models {

void attention_forward(const StepContext& ctx, const AttentionOptions& opt, const AttentionWeights& w,
                       const ops::KvLayerView& kv, const Tensor& x, const Tensor& out) {
  ops::Backend& be = ctx.backend;
  const int64_t T = x.dim(0);
  const int64_t Hq = opt.n_heads, Hkv = opt.n_kv_heads, D = opt.head_dim;

  Buffer q = be.alloc(DType::kF32, {T, Hq, D});    // [T, Hq, D]
  Buffer k = be.alloc(DType::kF32, {T, Hkv, D});   // [T, Hkv, D]
  Buffer v = be.alloc(DType::kF32, {T, Hkv, D});   // [T, Hkv, D]
  Buffer gate;                                     // [T, Hq, D], with output_gate
  Buffer qg;                                       // [T * Hq, 2D], with output_gate
  if (opt.output_gate) qg = be.alloc(DType::kF32, {T * Hq, 2 * D});
  {
    // q_proj rows are laid out per head as [q(D) | gate(D)] with output_gate (Qwen3-Next gated attention).
    const ops::LinearWeight* ws[] = {&w.q_proj, &w.k_proj, &w.v_proj};
    const Tensor ys[] = {opt.output_gate ? qg.view().reshape({T, Hq * 2 * D}) : q.view().reshape({T, Hq * D}),
                         k.view().reshape({T, Hkv * D}), v.view().reshape({T, Hkv * D})};
    be.linears(x, ws, ys);
  }
  if (opt.output_gate) {
    gate = be.alloc(DType::kF32, {T, Hq, D});
    be.copy_cols(qg.view(), 0, q.view().reshape({T * Hq, D}), 0, D);
    be.copy_cols(qg.view(), D, gate.view().reshape({T * Hq, D}), 0, D);
  }

  if (opt.qk_norm) {
    const Tensor qr = q.view().reshape({T * Hq, D});
    const Tensor kr = k.view().reshape({T * Hkv, D});
    be.rms_norm(qr, w.q_norm, opt.rms_norm_eps, opt.unit_offset_norm, qr);
    be.rms_norm(kr, w.k_norm, opt.rms_norm_eps, opt.unit_offset_norm, kr);
  }
  if (opt.rot_dim > 0) {
    be.rope_neox(q.view(), ctx.positions, opt.rot_dim, opt.rope_theta);
    be.rope_neox(k.view(), ctx.positions, opt.rot_dim, opt.rope_theta);
  }
  be.kv_store(k.view(), v.view(), kv, ctx.seqs);

  Buffer o = be.alloc(DType::kF32, {T, Hq, D});  // [T, Hq, D]
  be.attention(q.view(), kv, ctx.seqs, 1.0f / std::sqrt(static_cast<float>(D)), o.view());
  if (opt.output_gate) be.mul_sigmoid(o.view().reshape({T, Hq * D}), gate.view().reshape({T, Hq * D}),
                                      o.view().reshape({T, Hq * D}));
  be.linear(o.view().reshape({T, Hq * D}), w.o_proj, out);
}

}  // namespace tandem::models
