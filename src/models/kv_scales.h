// fp8 KV cache scales from a checkpoint, in vLLM's convention: `<layer>.self_attn.k_scale` and `v_scale`,
// one per attention layer (shape [] or [1]) or one per kv head ([n_kv_heads]). The cache stores x / scale
// and attention reads stored * scale. Without them every scale is 1.0 (vLLM's default too): the scales are
// never computed from the first batch that arrives, which would make a request's output depend on its
// neighbours.
#pragma once

#include <string>
#include <vector>

#include "kv/kv_cache.h"
#include "loader/checkpoint.h"
#include "models/loaded_model.h"

namespace tandem::models {

/// Scales for the attention layers under `layer_prefixes` (e.g. "model.layers.0."), in that order, as
/// [n_layers * n_kv_heads] each. Empty when the checkpoint has no k_scale / v_scale at all. Throws
/// tandem::Error naming the tensor when only some layers have them, or a shape, dtype or value is wrong.
///
/// The loader's weight map does not consume these tensors: a checkpoint that has them also gets the
/// "not consumed" warning at load.
[[nodiscard]] kv::KvScales read_kv_scales(const loader::Checkpoint& checkpoint,
                                          const std::vector<std::string>& layer_prefixes, int n_kv_heads);

struct ModelKvScales {
  kv::KvScales target;  // layers model.layers.{0 .. L-1}.
  kv::KvScales draft;   // the MTP layer (its prefix); empty without a draft
};

/// A loaded Glm4Moe model's scales, target and draft.
[[nodiscard]] ModelKvScales read_model_kv_scales(const LoadedModel& model);

}  // namespace tandem::models
