// Glm4MoeForCausalLM hyper-parameters (GLM-4.5 / 4.5-Air / 4.6 / 4.7), parsed once from config.json.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "models/layers/decoder_layer.h"

namespace tandem::models::glm4_moe {

struct Glm4MoeConfig {
  int64_t vocab_size = 0;               // V
  int64_t hidden_size = 0;              // H
  int64_t intermediate_size = 0;        // dense MLP width
  int64_t moe_intermediate_size = 0;    // Im, per routed expert
  int num_hidden_layers = 0;            // L (the NextN layer, if any, is layer L)
  int num_attention_heads = 0;          // Hq
  int num_key_value_heads = 0;          // Hkv
  int head_dim = 0;                     // D
  float partial_rotary_factor = 0.5f;
  float rope_theta = 10000.0f;
  float rms_norm_eps = 1e-5f;
  bool attention_bias = true;
  bool use_qk_norm = false;
  int n_routed_experts = 0;             // E
  int num_experts_per_tok = 0;          // K
  int n_shared_experts = 0;
  int n_group = 1;
  int topk_group = 1;
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1.0f;
  int first_k_dense_replace = 0;
  int num_nextn_predict_layers = 0;
  bool tie_word_embeddings = false;
  int64_t max_position_embeddings = 0;
  std::vector<int32_t> eos_token_ids;

  /// Throws tandem::Error naming the key for a missing required key, a wrong type, or a value tandem does
  /// not implement (other architectures, activations, rope scaling, scoring functions). `keys_read`, when
  /// given, receives every top-level key the parse consulted (present or not): the keys an override may set
  /// (models/config_overrides.h).
  static Glm4MoeConfig from_hf(const nlohmann::json& config, std::set<std::string>* keys_read = nullptr);

  int rot_dim() const { return static_cast<int>(head_dim * partial_rotary_factor); }
  bool is_moe_layer(int layer) const { return layer >= first_k_dense_replace; }
  DecoderLayerOptions layer_options() const;
};

}  // namespace tandem::models::glm4_moe
