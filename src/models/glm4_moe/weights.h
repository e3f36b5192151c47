// Glm4Moe checkpoint name table: which tensors a decoder layer, the embeddings and the head are made of.
#pragma once

#include <string>

#include "loader/weight_map.h"
#include "models/glm4_moe/config.h"
#include "models/layers/decoder_layer.h"

namespace tandem::models::glm4_moe {

/// Binds the tensors of one decoder layer under `prefix` (e.g. "model.layers.3."). MoE layers carry
/// mlp.gate, mlp.gate.e_score_correction_bias, mlp.experts.{e}.* and mlp.shared_experts.*; dense layers
/// mlp.{gate,up,down}_proj. `load` applies to every Linear of the layer.
DecoderLayerWeights load_decoder_layer(loader::WeightMap& wm, const std::string& prefix, const Glm4MoeConfig& c,
                                       bool moe, loader::LinearLoad load);

}  // namespace tandem::models::glm4_moe
