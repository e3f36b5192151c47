#include "quant/fp8_quantize.h"

#include <algorithm>
#include <cmath>

namespace tandem::quant {

namespace {

float load(const Tensor& t, int64_t i) {
  switch (t.dtype) {
    case DType::kF32: return t.ptr<float>()[i];
    case DType::kBF16: return bf16_to_f32(t.ptr<uint16_t>()[i]);
    case DType::kF16: return f16_to_f32(t.ptr<uint16_t>()[i]);
    case DType::kF8E4M3: return f8e4m3_to_f32(t.ptr<uint8_t>()[i]);
    default: fail("fp8 quantize: unsupported dtype {}", dtype_name(t.dtype));
  }
}

/// Rounds a scale to its stored dtype and returns the value the dequantiser will see.
float store_scale(float s, const Buffer& scale, int64_t idx) {
  if (scale.tensor().dtype == DType::kBF16) {
    const uint16_t b = f32_to_bf16(s);
    scale.ptr<uint16_t>()[idx] = b;
    return bf16_to_f32(b);
  }
  scale.ptr<float>()[idx] = s;
  return s;
}

}  // namespace

Fp8Quantized quantize_fp8(const Tensor& w, Fp8Strategy strategy, int bo, int bi, DType scale_dtype) {
  TANDEM_CHECK(w.rank() == 2, "fp8 quantize: weight must be 2-D, got {}", w.shape.str());
  TANDEM_CHECK(scale_dtype == DType::kBF16 || scale_dtype == DType::kF32, "fp8 scale dtype must be BF16 or F32");
  const int64_t out = w.dim(0), in = w.dim(1);
  if (strategy == Fp8Strategy::kChannel) {
    bo = 1;
    bi = static_cast<int>(in);
  }
  TANDEM_CHECK(bo > 0 && bi > 0, "fp8 quantize: block sizes must be positive");
  const int64_t nbo = (out + bo - 1) / bo, nbi = (in + bi - 1) / bi;
  Fp8Quantized q{Buffer(DType::kF8E4M3, {out, in}),
                 Buffer(scale_dtype, strategy == Fp8Strategy::kChannel ? Shape{out, 1} : Shape{nbo, nbi})};
  for (int64_t b0 = 0; b0 < nbo; ++b0)
    for (int64_t b1 = 0; b1 < nbi; ++b1) {
      const int64_t o0 = b0 * bo, o1 = std::min(out, o0 + bo), i0 = b1 * bi, i1 = std::min(in, i0 + bi);
      float amax = 0.0f;
      for (int64_t o = o0; o < o1; ++o)
        for (int64_t i = i0; i < i1; ++i) amax = std::max(amax, std::fabs(load(w, o * in + i)));
      const float s = store_scale(amax == 0.0f ? 1.0f : amax / 448.0f, q.scale, b0 * nbi + b1);
      for (int64_t o = o0; o < o1; ++o)
        for (int64_t i = i0; i < i1; ++i) {
          const float v = std::clamp(load(w, o * in + i) / s, -448.0f, 448.0f);
          q.weight.ptr<uint8_t>()[o * in + i] = f32_to_f8e4m3(v);
        }
    }
  return q;
}

Buffer dequantize_fp8(const Tensor& q, const Tensor& scale, Fp8Strategy strategy, int bo, int bi) {
  const int64_t out = q.dim(0), in = q.dim(1);
  if (strategy == Fp8Strategy::kChannel) {
    bo = 1;
    bi = static_cast<int>(in);
  }
  const int64_t nbi = (in + bi - 1) / bi;
  Buffer w(DType::kF32, {out, in});
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i)
      w.ptr<float>()[o * in + i] = f8e4m3_to_f32(q.ptr<uint8_t>()[o * in + i]) * load(scale, (o / bo) * nbi + i / bi);
  return w;
}

}  // namespace tandem::quant
