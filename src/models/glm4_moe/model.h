// Glm4MoeForCausalLM (GLM-4.5 / 4.6 / 4.7): embeddings, L decoder layers (dense for the first
// first_k_dense_replace, MoE after), final RMSNorm, lm_head. The NextN layer L is the draft's (models/mtp).
#pragma once

#include <memory>
#include <vector>

#include "kv/kv_cache.h"
#include "loader/weight_map.h"
#include "models/causal_lm.h"
#include "models/glm4_moe/config.h"

namespace tandem::models::glm4_moe {

class Glm4MoeForCausalLM {
 public:
  /// Binds every main-model tensor through `wm` (errors are collected there; call wm.finish() after).
  Glm4MoeForCausalLM(const Glm4MoeConfig& config, loader::WeightMap& wm);

  const Glm4MoeConfig& config() const { return config_; }
  /// KV layers this model needs in a cache (one per decoder layer).
  int n_kv_layers() const { return config_.num_hidden_layers; }

  /// Runs the batch whose metadata `step` holds; writes its K/V into `cache` layers [0, L). Temporaries and
  /// outputs come from `arena`.
  [[nodiscard]] ForwardOutput forward(ops::Backend& backend, Arena& arena, const kv::KvCache& cache,
                                      const ops::StepState& step, bool capture_hidden) const;
  /// The same from a host batch (begin_step first).
  [[nodiscard]] ForwardOutput forward(ops::Backend& backend, Arena& arena, const kv::KvCache& cache,
                                      const ForwardInput& in) const;

  const Tensor& embed_tokens() const { return embed_tokens_; }      // [V, H]
  const ops::LinearWeight& lm_head() const { return lm_head_; }     // [V, H]
  /// Weight bytes one decode step reads at batch 1: everything but the embedding table and the routed
  /// experts a token does not select (K of E per MoE layer).
  size_t active_bytes_per_token() const;
  size_t total_weight_bytes() const;

 private:
  Glm4MoeConfig config_;
  DecoderLayerOptions layer_options_;
  Tensor embed_tokens_;                     // [V, H]
  std::vector<DecoderLayerWeights> layers_;  // L
  Tensor norm_;                             // [H]
  ops::LinearWeight lm_head_;               // [V, H]
};

}  // namespace tandem::models::glm4_moe
