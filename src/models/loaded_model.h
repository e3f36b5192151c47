// Loading a checkpoint folder into a target model and, when present and wanted, its MTP draft — through
// one WeightMap, so every tensor is either consumed or reported.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "loader/checkpoint.h"
#include "loader/quant_config.h"
#include "loader/weight_map.h"
#include "models/glm4_moe/model.h"
#include "models/mtp/draft_precision.h"
#include "models/mtp/mtp_draft.h"

namespace tandem::models {

struct LoadOptions {
  bool with_draft = true;                 // load the MTP layer as a draft if the checkpoint has one
  mtp::DraftQuantRequest draft_quant;     // --speculative-draft-model-quantization
};

struct LoadedModel {
  std::unique_ptr<loader::Checkpoint> checkpoint;
  loader::QuantConfig quant;
  glm4_moe::Glm4MoeConfig config;
  std::unique_ptr<glm4_moe::Glm4MoeForCausalLM> target;
  std::unique_ptr<mtp::MtpDraft> draft;   // null: no MTP layer, or not requested
  bool checkpoint_has_mtp = false;
  std::string mtp_prefix;                 // e.g. "model.layers.92."
  mtp::DraftPrecision draft_precision;    // meaningful when draft != null
  std::vector<loader::WeightMap::LinearRecord> linears;  // per Linear: stored and running precision
  std::vector<std::string> unused_tensors;
  std::vector<Buffer> owned;              // dequantised / converted weights

  /// Resident weight bytes: mmap'ed tensors in use plus owned buffers.
  size_t resident_weight_bytes() const;
};

/// Throws tandem::Error naming the file / tensor / key on any problem.
std::unique_ptr<LoadedModel> load_model(const std::filesystem::path& dir, const LoadOptions& options,
                                        ops::Backend& backend);

}  // namespace tandem::models
