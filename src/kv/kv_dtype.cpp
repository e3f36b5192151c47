#include "kv/kv_dtype.h"

#include "core/error.h"

namespace tandem::kv {

DType parse_kv_cache_dtype(std::string_view name) {
  if (name == "auto" || name == "bf16" || name == "bfloat16") return DType::kBF16;
  if (name == "fp8_e4m3" || name == "fp8") return DType::kF8E4M3;
  if (name == "float32" || name == "fp32") return DType::kF32;
  fail("--kv-cache-dtype {}: expected auto, bf16 (bfloat16), fp8_e4m3 (fp8) or float32", name);
}

std::string_view kv_cache_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return "bf16";
    case DType::kF8E4M3:
      return "fp8_e4m3";
    case DType::kF32:
      return "float32";
    default:
      return dtype_name(dtype);
  }
}

}  // namespace tandem::kv
