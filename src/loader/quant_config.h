// The `quantization_config` of a Hugging Face config.json, reduced to what tandem can run: FP8 (e4m3)
// weights with per-tensor, per-channel or block scales and dynamic activations, written either by
// compressed-tensors (zai-org GLM-4.x-FP8, llm-compressor FP8_DYNAMIC / FP8_BLOCK) or DeepSeek-style
// `"quant_method": "fp8"`. Anything else is a load error naming the field, never a silent fallback.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::loader {

enum class QuantMethod { kNone, kCompressedTensors, kFp8 /* DeepSeek-style quant_method fp8 */ };
enum class WeightStrategy { kTensor, kChannel, kBlock };

struct QuantConfig {
  QuantMethod method = QuantMethod::kNone;
  WeightStrategy weight_strategy = WeightStrategy::kChannel;
  int block_out = 0, block_in = 0;  // kBlock: compressed-tensors block_structure / fp8 weight_block_size
  std::string
      activation_scheme;  // "dynamic per-token", "dynamic per-group 128", "dynamic per-tensor", "none"
  std::vector<std::string> ignore;  // exact names and "re:" regexes as written
  nlohmann::json raw;               // the original object (for writing back / inspect)

  /// Whether the module (e.g. "model.layers.3.mlp.down_proj", "lm_head") is excluded from quantization.
  /// An entry "re:<pattern>" matches when the pattern matches at the start of the name (Python re.match, as
  /// compressed-tensors and vLLM do); any other entry must equal the name. For quant_method fp8 a plain
  /// entry also matches as a substring, which is how transformers reads `modules_to_not_convert`.
  bool is_ignored(std::string_view module_name) const;

  /// Whether a checkpoint with this config stores Linear `module` as fp8, for when there is no file to ask
  /// (the memory plan, --load-format dummy; the loader itself decides per tensor from the file): a quantized
  /// method, a projection of attention or an MLP (q/k/v/o_proj, gate/up/down_proj: the layers `tandem
  /// quantize` and the GLM / DeepSeek fp8 releases quantize), and not ignored. The router (mlp.gate), lm_head
  /// and the MTP layer's eh_proj / shared_head.head stay unquantized: GLM-4.x-FP8 lists them in `ignore`,
  /// DeepSeek-style exports store them bf16 without listing them.
  bool quantizes(std::string_view module) const;

  /// Reads config["quantization_config"] if present (kNone otherwise). Throws tandem::Error naming the
  /// field and value of anything unsupported (other methods or formats, int / non-8-bit / asymmetric
  /// weights, static activation scales, mixed schemes across config_groups, invalid regexes).
  static QuantConfig from_hf(const nlohmann::json& config);
  /// A quantization_config object that from_hf reads back to the same settings (null for kNone).
  nlohmann::json to_hf() const;

 private:
  // The compiled "re:" entries of `ignore`, built by from_hf and shared by copies; is_ignored recompiles if
  // `ignore` was edited since. Defined in the .cpp so <regex> stays out of every includer.
  struct IgnoreMatcher;
  std::shared_ptr<const IgnoreMatcher> matcher_;
};

}  // namespace tandem::loader
