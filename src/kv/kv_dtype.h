// The `--kv-cache-dtype` vocabulary (vLLM's names) and what each means for storage.
#pragma once

#include <string_view>

#include "core/dtype.h"

namespace tandem::kv {

/// Parses a --kv-cache-dtype value: auto | bf16 | bfloat16 | fp8_e4m3 | fp8 | float32. `auto` is bf16, the
/// activation dtype of the GLM-4.x checkpoints (vLLM's auto follows the model dtype); `fp8` is fp8_e4m3.
/// Throws tandem::Error listing the accepted values for anything else (fp8_e5m2 included).
[[nodiscard]] DType parse_kv_cache_dtype(std::string_view name);

/// The canonical flag spelling of a KV cache element type: "bf16", "fp8_e4m3" or "float32".
[[nodiscard]] std::string_view kv_cache_dtype_name(DType dtype);

}  // namespace tandem::kv
