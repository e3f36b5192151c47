// `tandem quantize`: an FP8 copy of a BF16/F16/F32 Hugging Face checkpoint in a format other engines load
// (compressed-tensors float-quantized, or DeepSeek-style quant_method "fp8" with weight_scale_inv).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "quant/fp8_quantize.h"

namespace tandem::quant {

enum class CheckpointFormat { kCompressedTensors, kDeepSeekFp8 };

struct QuantizeOptions {
  Fp8Strategy strategy = Fp8Strategy::kChannel;  // fp8-channel | fp8-block
  int block = 128;                               // block edge for fp8-block
  CheckpointFormat format = CheckpointFormat::kCompressedTensors;
};

struct QuantizeReport {
  int quantized = 0;      // Linear weights written as fp8
  int kept = 0;           // tensors copied unchanged
  size_t bytes_in = 0;
  size_t bytes_out = 0;
};

/// Modules that stay in their stored precision (compressed-tensors `ignore` syntax): the head, the MTP
/// eh_proj / shared head, the routers.
const std::vector<std::string>& default_ignore();

/// Writes `out` (created; must not exist or be empty). Throws tandem::Error on any problem.
QuantizeReport quantize_checkpoint(const std::filesystem::path& in, const std::filesystem::path& out,
                                   const QuantizeOptions& options);

}  // namespace tandem::quant
