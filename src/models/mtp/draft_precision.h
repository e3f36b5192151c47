// The draft precision policy (`--speculative-draft-model-quantization`), decided once at load time and
// reported everywhere (start-up log, `tandem inspect`, `generate --json`, /get_server_info). This is the
// decision whose silent drift in SGLang (#19246) paired a BF16 draft with an FP8 target.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "loader/checkpoint.h"
#include "loader/quant_config.h"
#include "loader/weight_map.h"
#include "ops/ops.h"

namespace tandem::models::mtp {

/// The user's request: "auto" (default), "unquant", or a scheme name that must match the checkpoint
/// ("fp8" for DeepSeek-style, "compressed-tensors").
struct DraftQuantRequest {
  enum class Mode { kAuto, kUnquant, kScheme } mode = Mode::kAuto;
  std::string scheme;
  static DraftQuantRequest parse(const std::string& s);  // throws on an unknown value
  std::string str() const;
};

struct DraftPrecision {
  loader::LinearLoad load = loader::LinearLoad::kAsStored;
  std::string stored;   // what the MTP layer's Linear weights are in the checkpoint, e.g. "fp8 (channel)"
  std::string running;  // what the draft computes with, e.g. "fp8 (channel)" or "bf16"
  std::string reason;   // one sentence: why
  nlohmann::json to_json() const;
};

/// Looks at the tensors under `mtp_prefix` (their dtypes, scales) and the request; never at environment.
DraftPrecision decide_draft_precision(const DraftQuantRequest& request, const loader::Checkpoint& ckpt,
                                      const loader::QuantConfig& quant, const std::string& mtp_prefix,
                                      const ops::Backend& backend);

/// The same decision for an MTP layer known without its file (--load-format dummy): `any_fp8` when any of its
/// Linear weights is stored F8_E4M3 (in `quant`'s scheme), `plain` the dtype of its unquantized weights.
DraftPrecision decide_draft_precision(const DraftQuantRequest& request, bool any_fp8, DType plain,
                                      const loader::QuantConfig& quant, const ops::Backend& backend);

/// Human-readable name of a quant config's weight scheme ("fp8 compressed-tensors channel", ...).
std::string scheme_name(const loader::QuantConfig& quant);

}  // namespace tandem::models::mtp
