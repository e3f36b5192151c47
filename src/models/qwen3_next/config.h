// Qwen3-Next hyper-parameters needed by its MTP block (the Qwen3-Next target model itself, with its
// Gated-DeltaNet layers, is not implemented yet: only the MTP layer is loaded and run).
#pragma once

#include <nlohmann/json.hpp>

#include "models/layers/decoder_layer.h"

namespace tandem::models::qwen3_next {

struct Qwen3NextConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;
  float partial_rotary_factor = 0.25f;
  float rope_theta = 10000.0f;
  float rms_norm_eps = 1e-6f;
  bool attention_bias = false;
  int num_experts = 0;                   // 0: dense MLP (Qwen3.5 dense)
  int num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t shared_expert_intermediate_size = 0;
  int64_t intermediate_size = 0;
  bool norm_topk_prob = true;
  int num_mtp_layers = 1;                // num_nextn_predict_layers / mtp_num_hidden_layers
  bool tie_word_embeddings = false;

  static Qwen3NextConfig from_hf(const nlohmann::json& config);
  int rot_dim() const { return static_cast<int>(head_dim * partial_rotary_factor); }
  DecoderLayerOptions mtp_layer_options() const;
};

}  // namespace tandem::models::qwen3_next
