// The per-family table that drives the single MTP draft loader (models/mtp/mtp_draft.h). Families differ in
// tensor names, norm style and decoder layer, never in code path: adding a layout is adding a table row.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "loader/weight_map.h"
#include "models/layers/decoder_layer.h"

namespace tandem::models::mtp {

struct MtpLayout {
  std::string family;          // shown by `tandem inspect`
  std::string prefix;          // "model.layers.{N}." (GLM-4.x / DeepSeek-V3) or "mtp." (Qwen3-Next / 3.5)
  std::string fc;              // "eh_proj" | "fc": [H, 2H], input concat[norm_embedding(e), norm_hidden(h)]
  std::string norm_embedding;  // "enorm" | "pre_fc_norm_embedding"
  std::string norm_hidden;     // "hnorm" | "pre_fc_norm_hidden"
  std::string final_norm;      // "shared_head.norm" | "norm"
  std::string decoder;         // decoder layer prefix under `prefix`: "" (GLM: same prefix) | "layers.0."
  std::string own_embed;       // optional own embedding under `prefix` ("embed_tokens"); "" if never present
  std::string own_head;        // optional own head under `prefix` ("shared_head.head"); "" if never present
  bool unit_offset_norms = false;  // (1 + w) RMSNorms (Qwen3-Next)
};

/// Everything the draft loader needs from the family: the table, the layer options and the layer's own
/// name table (a decoder layer binder).
struct MtpSpec {
  MtpLayout layout;
  int64_t hidden_size = 0;  // H
  int64_t vocab_size = 0;   // V
  float rms_norm_eps = 1e-5f;
  DecoderLayerOptions layer_options;
  std::function<DecoderLayerWeights(loader::WeightMap&, const std::string& prefix, loader::LinearLoad)> load_layer;
};

}  // namespace tandem::models::mtp
