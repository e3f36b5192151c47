// Device helpers shared by the CUDA kernels: an element of a weight array (Elem f32 / bf16 / f16 / f8_e4m3)
// read as its exact f32 value, and a host-side switch that instantiates a kernel template for a float Elem.
// Every conversion here is exact (each of these types widens to f32 without rounding), so a kernel that reads
// a weight through load_elem sees the same f32 the CPU backend's to_f32 gives.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "ops/cuda/kernels.h"

namespace tandem::ops::cuda {

/// bf16 bits as f32 (the upper half of the f32 bit pattern).
__device__ __forceinline__ float bf16_bits_to_f32(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}

/// IEEE binary16 bits as f32 (exact, subnormals included).
__device__ __forceinline__ float f16_bits_to_f32(uint16_t bits) {
  return __half2float(__ushort_as_half(bits));
}

/// float8_e4m3fn bits as f32: bias 7, no infinities, S.1111.111 is NaN, exponent 0 is subnormal (m * 2^-9).
__device__ __forceinline__ float f8e4m3_bits_to_f32(uint8_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x80u) << 24;
  const uint32_t exponent = (bits >> 3) & 0xfu, mantissa = bits & 0x7u;
  if (exponent == 0xfu && mantissa == 0x7u) return __uint_as_float(sign | 0x7fc00000u);
  if (exponent == 0) return __uint_as_float(sign | __float_as_uint(static_cast<float>(mantissa) * 0x1p-9f));
  return __uint_as_float(sign | ((exponent + 120u) << 23) | (mantissa << 20));
}

/// Element i of an array of kElem, as its exact f32 value. base: [> i] kElem.
template <Elem kElem>
__device__ __forceinline__ float load_elem(const void* base, int64_t i) {
  if constexpr (kElem == Elem::kF32) {
    return static_cast<const float*>(base)[i];
  } else if constexpr (kElem == Elem::kBF16) {
    return bf16_bits_to_f32(static_cast<const uint16_t*>(base)[i]);
  } else if constexpr (kElem == Elem::kF16) {
    return f16_bits_to_f32(static_cast<const uint16_t*>(base)[i]);
  } else {
    return f8e4m3_bits_to_f32(static_cast<const uint8_t*>(base)[i]);
  }
}

/// Host side: calls launch(std::integral_constant<Elem, e>{}) for elem e in {kF32, kBF16, kF16} and returns
/// its result; any other elem gives cudaErrorInvalidValue without a launch.
template <class Launch>
cudaError_t with_float_elem(Elem elem, Launch&& launch) {
  switch (elem) {
    case Elem::kF32:
      return launch(std::integral_constant<Elem, Elem::kF32>{});
    case Elem::kBF16:
      return launch(std::integral_constant<Elem, Elem::kBF16>{});
    case Elem::kF16:
      return launch(std::integral_constant<Elem, Elem::kF16>{});
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace tandem::ops::cuda
