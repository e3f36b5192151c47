// Seeded random test data for the op tests (ops_cpu_test, backend_ops_test): floats, and host storage of any
// float dtype together with each element's exact value, decoded with the core scalar conversions
// (independently of any backend's kernels).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "tensor/tensor.h"

namespace tandem::test {

inline uint32_t fnv1a(std::string_view s) {
  uint32_t h = 2166136261u;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  return h;
}

struct Rng {
  std::mt19937 gen;
  explicit Rng(uint32_t seed) : gen(seed) {}
  /// Seeded from a name, so a case generates the same inputs wherever it runs.
  explicit Rng(std::string_view name) : gen(fnv1a(name)) {}
  float uniform(float lo = -1.0f, float hi = 1.0f) { return std::uniform_real_distribution<float>(lo, hi)(gen); }
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); }
  std::vector<float> vec(int64_t n, float lo = -1.0f, float hi = 1.0f) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = uniform(lo, hi);
    return v;
  }
  /// k distinct values of [0, n), in random order.
  std::vector<int32_t> distinct(int k, int n) {
    std::vector<int32_t> all(static_cast<size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), gen);
    all.resize(static_cast<size_t>(k));
    return all;
  }
};

/// Random host storage of a float dtype plus each element's exact value.
struct HostData {
  DType dtype = DType::kF32;
  std::vector<uint8_t> bytes;
  std::vector<double> value;
  /// A view of the bytes with shape `s` (a test may give a wrong shape on purpose).
  Tensor tensor(Shape s) const { return Tensor{const_cast<uint8_t*>(bytes.data()), s, dtype}; }
};

inline HostData random_data(Rng& rng, int64_t n, DType dtype, float lo = -1.0f, float hi = 1.0f) {
  HostData d;
  d.dtype = dtype;
  d.bytes.resize(static_cast<size_t>(n) * dtype_size(dtype));
  d.value.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::kF32: {
        const float f = rng.uniform(lo, hi);
        std::memcpy(&d.bytes[i * 4], &f, 4);
        d.value[i] = f;
        break;
      }
      case DType::kBF16: {
        const uint16_t b = f32_to_bf16(rng.uniform(lo, hi));
        std::memcpy(&d.bytes[i * 2], &b, 2);
        d.value[i] = bf16_to_f32(b);
        break;
      }
      case DType::kF16: {  // random sign, exponent 2^-16 .. 2^0 (subnormals included), mantissa
        const int e = rng.integer(0, 15);
        const uint16_t h = static_cast<uint16_t>((rng.integer(0, 1) << 15) | (e << 10) | rng.integer(0, 1023));
        std::memcpy(&d.bytes[i * 2], &h, 2);
        d.value[i] = f16_to_f32(h);
        break;
      }
      case DType::kF8E4M3: {  // any encoding but NaN (0x7f, 0xff): subnormals and +-448 included
        uint8_t b;
        do b = static_cast<uint8_t>(rng.integer(0, 255));
        while ((b & 0x7f) == 0x7f);
        d.bytes[i] = b;
        d.value[i] = f8e4m3_to_f32(b);
        break;
      }
      default:
        ADD_FAILURE() << "no random data for " << dtype_name(dtype);
    }
  }
  return d;
}

}  // namespace tandem::test
