// Element types that appear in real checkpoints, and scalar conversions between them.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tandem {

enum class DType : uint8_t { kF32, kBF16, kF16, kF8E4M3, kI32, kI64 };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // safetensors spelling: "F32", "BF16", "F16", "F8_E4M3", ...
/// Parses a safetensors dtype string; returns false for anything tandem cannot load.
bool parse_dtype(std::string_view s, DType* out);

inline float bf16_to_f32(uint16_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v) << 16); }

/// Round-to-nearest-even, NaN preserved (matches torch's float -> bfloat16).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h);

/// float8_e4m3fn (no infinities, max 448, 0x7f/0xff = NaN).
float f8e4m3_to_f32(uint8_t v);
/// Saturating round-to-nearest-even conversion to float8_e4m3fn (torch semantics for finite inputs
/// after clamping to [-448, 448]).
uint8_t f32_to_f8e4m3(float f);

}  // namespace tandem
