// Portable linear kernel: 8 independent f32 partial sums per dot product (a plain array the compiler may
// map onto whatever SIMD the baseline target has), tiles of 4 rows x 2 tokens. fp8 decodes through a
// 256-entry table of exact values.
#include <array>

#include "ops/cpu/linear_tile.h"

namespace tandem::ops::cpu {
namespace {

constexpr int kScalarLanes = 8;

struct Lanes {
  float v[kScalarLanes];
};

const std::array<float, 256>& f8_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = f8e4m3_to_f32(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

struct Scalar {
  using Reg = Lanes;
  static constexpr int kLanes = kScalarLanes;
  static constexpr int kRowTile = 4;
  static constexpr int kRowTileWide = 4;
  static constexpr bool kPairedBf16 = false;
  static constexpr int kTokTile = 2;
  static constexpr float kF8Unit = 1.0f;

  static Reg zero() { return Reg{}; }
  static Reg fma(const Reg& a, const Reg& b, Reg c) {
    for (int l = 0; l < kLanes; ++l) c.v[l] += a.v[l] * b.v[l];
    return c;
  }
  static float hsum(const Reg& a) {
    float s = 0.0f;
    for (float v : a.v) s += v;
    return s;
  }
  static Reg load_x(const float* p) { return load_x_tail(p, kLanes); }
  static Reg load_x_tail(const float* p, int n) {
    Reg r{};
    for (int l = 0; l < n; ++l) r.v[l] = p[l];
    return r;
  }
  template <DType WT>
  static float element(const void* row, int64_t i) {
    if constexpr (WT == DType::kF32)
      return static_cast<const float*>(row)[i];
    else if constexpr (WT == DType::kBF16)
      return bf16_to_f32(static_cast<const uint16_t*>(row)[i]);
    else if constexpr (WT == DType::kF16)
      return f16_to_f32(static_cast<const uint16_t*>(row)[i]);
    else
      return f8_table()[static_cast<const uint8_t*>(row)[i]];
  }
  template <DType WT>
  static Reg load_w(const void* row, int64_t i) {
    return load_w_tail<WT>(row, i, kLanes);
  }
  template <DType WT>
  static Reg load_w_tail(const void* row, int64_t i, int n) {
    Reg r{};
    for (int l = 0; l < n; ++l) r.v[l] = element<WT>(row, i + l);
    return r;
  }
};

}  // namespace

void linear_rows_scalar(const LinearProblem& p, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  linear_tile::linear_rows<Scalar>(p, r0, r1, t0, t1);
}

}  // namespace tandem::ops::cpu
