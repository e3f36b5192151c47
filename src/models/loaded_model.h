// Loading a checkpoint folder into a target model and, when present and wanted, its MTP draft — through
// one WeightMap, so every tensor is either consumed or reported. With --load-format dummy the folder needs
// only config.json: a DummyWeightMap makes every weight on the backend (loader/dummy_weight_map.h), after the
// memory plan has checked that they fit.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loader/checkpoint.h"
#include "loader/quant_config.h"
#include "loader/weight_map.h"
#include "models/glm4_moe/model.h"
#include "models/mtp/draft_precision.h"
#include "models/mtp/mtp_draft.h"

namespace tandem::models {

/// --load-format (vLLM's flag): kAuto reads the safetensors; kDummy makes every weight on the backend from
/// config.json alone, seeded pseudo-random, for benchmarking the real shapes without a checkpoint.
enum class LoadFormat { kAuto, kDummy };
/// "auto" | "dummy"; throws tandem::Error naming the flag otherwise.
LoadFormat parse_load_format(const std::string& name);
std::string_view load_format_name(LoadFormat format);

struct LoadOptions {
  bool with_draft = true;                 // load the MTP layer as a draft if the checkpoint has one
  mtp::DraftQuantRequest draft_quant;     // --speculative-draft-model-quantization
  LoadFormat load_format = LoadFormat::kAuto;  // --load-format
  nlohmann::json config_overrides;        // --json-model-override-args: an object over config.json, or null
  uint64_t dummy_seed = 0;                // kDummy: the seed of every weight's values
};

struct LoadedModel {
  LoadFormat load_format = LoadFormat::kAuto;
  std::unique_ptr<loader::Checkpoint> checkpoint;  // kDummy: config.json only, no tensors
  loader::QuantConfig quant;
  glm4_moe::Glm4MoeConfig config;
  std::unique_ptr<glm4_moe::Glm4MoeForCausalLM> target;
  std::unique_ptr<mtp::MtpDraft> draft;   // null: no MTP layer, or not requested
  bool checkpoint_has_mtp = false;       // kDummy: the config declares a NextN layer
  std::string mtp_prefix;                 // e.g. "model.layers.92."
  mtp::DraftPrecision draft_precision;    // meaningful when draft != null
  std::vector<loader::WeightMap::LinearRecord> linears;  // per Linear: stored and running precision
  std::vector<std::string> unused_tensors;
  std::vector<Buffer> owned;              // dequantised / converted weights

  /// Resident weight bytes: mmap'ed tensors in use plus owned buffers (kDummy: every weight is owned).
  size_t resident_weight_bytes() const;
};

/// Throws tandem::Error naming the file / tensor / key on any problem: for kDummy also, before anything is
/// allocated, when the memory plan's weights and workspace reserve exceed backend.available_memory_bytes().
std::unique_ptr<LoadedModel> load_model(const std::filesystem::path& dir, const LoadOptions& options,
                                        ops::Backend& backend);

}  // namespace tandem::models
