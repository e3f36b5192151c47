#include "models/kv_scales.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace tandem::models {

namespace {

float element(const loader::TensorInfo& t, int64_t i) {
  const char* p = static_cast<const char*>(t.data) + static_cast<size_t>(i) * dtype_size(t.dtype);
  uint16_t h = 0;
  float f = 0;
  switch (t.dtype) {
    case DType::kF32:
      std::memcpy(&f, p, 4);
      return f;
    case DType::kBF16:
      std::memcpy(&h, p, 2);
      return bf16_to_f32(h);
    case DType::kF16:
      std::memcpy(&h, p, 2);
      return f16_to_f32(h);
    default:
      fail("KV scale '{}' in {}: dtype {}, expected F32, BF16 or F16", t.name, t.file, dtype_name(t.dtype));
  }
}

/// Appends one layer's n_kv_heads scales from `t` (a scalar is broadcast over the heads).
void append(const loader::TensorInfo& t, int n_kv_heads, std::vector<float>& out) {
  const int64_t n = t.shape.numel();
  if (n != 1 && !(t.shape.rank == 1 && n == n_kv_heads))
    fail("KV scale '{}' in {}: shape {}, expected [], [1] or [{}] (one per kv head)", t.name, t.file,
         t.shape.str(), n_kv_heads);
  for (int g = 0; g < n_kv_heads; ++g) {
    const float s = element(t, n == 1 ? 0 : g);
    if (!std::isfinite(s) || s <= 0.0f)
      fail("KV scale '{}' in {}: value {} must be finite and > 0", t.name, t.file, s);
    out.push_back(s);
  }
}

}  // namespace

kv::KvScales read_kv_scales(const loader::Checkpoint& ckpt, const std::vector<std::string>& prefixes,
                            int n_kv_heads) {
  kv::KvScales s;
  size_t found = 0;
  for (const auto& p : prefixes)
    for (const char* which : {"self_attn.k_scale", "self_attn.v_scale"})
      found += ckpt.find(p + which) != nullptr;
  if (found == 0) return s;
  for (const auto& p : prefixes) {
    const loader::TensorInfo* k = ckpt.find(p + "self_attn.k_scale");
    const loader::TensorInfo* v = ckpt.find(p + "self_attn.v_scale");
    if (!k || !v)
      fail("the checkpoint has KV cache scales for some layers but not '{}' (k_scale {}, v_scale {})", p,
           k ? "present" : "missing", v ? "present" : "missing");
    append(*k, n_kv_heads, s.k);
    append(*v, n_kv_heads, s.v);
  }
  return s;
}

ModelKvScales read_model_kv_scales(const LoadedModel& m) {
  ModelKvScales out;
  std::vector<std::string> prefixes;
  for (int l = 0; l < m.target->n_kv_layers(); ++l)
    prefixes.push_back("model.layers." + std::to_string(l) + ".");
  out.target = read_kv_scales(*m.checkpoint, prefixes, m.config.num_key_value_heads);
  if (m.draft)
    out.draft = read_kv_scales(*m.checkpoint, {m.mtp_prefix}, m.draft->layer_options().attn.n_kv_heads);
  return out;
}

}  // namespace tandem::models
