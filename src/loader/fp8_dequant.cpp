#include "loader/fp8_dequant.h"

#include <array>

namespace tandem::loader {

Buffer dequantize_fp8(const Tensor& weight, const Tensor& scale, ops::WeightQuant quant, int block_out,
                      int block_in) {
  TANDEM_CHECK(weight.dtype == DType::kF8E4M3 && weight.rank() == 2,
               "dequantize_fp8: weight must be 2-D F8_E4M3");
  TANDEM_CHECK(scale.dtype == DType::kF32, "dequantize_fp8: scale must be f32");
  const int64_t out = weight.dim(0), in = weight.dim(1);
  int64_t scale_cols = 0;  // scale elements per scale row (kFp8Block only)
  switch (quant) {
    case ops::WeightQuant::kFp8Tensor:
      TANDEM_CHECK(scale.numel() == 1, "dequantize_fp8: tensor scale has {} elements", scale.numel());
      break;
    case ops::WeightQuant::kFp8Channel:
      TANDEM_CHECK(scale.numel() == out, "dequantize_fp8: channel scale has {} elements, want {}",
                   scale.numel(), out);
      break;
    case ops::WeightQuant::kFp8Block:
      TANDEM_CHECK(block_out > 0 && block_in > 0, "dequantize_fp8: block {}x{}", block_out, block_in);
      scale_cols = (in + block_in - 1) / block_in;
      TANDEM_CHECK(scale.numel() == (out + block_out - 1) / block_out * scale_cols,
                   "dequantize_fp8: block scale {} does not cover [{}, {}] in {}x{} blocks",
                   scale.shape.str(), out, in, block_out, block_in);
      break;
    case ops::WeightQuant::kNone:
      fail("dequantize_fp8: weight quant kind is kNone");
  }
  std::array<float, 256> lut;
  for (int v = 0; v < 256; ++v) lut[v] = f8e4m3_to_f32(static_cast<uint8_t>(v));

  Buffer result(DType::kBF16, Shape{out, in});
  const auto* wq = weight.ptr<const uint8_t>();
  const auto* s = scale.ptr<const float>();
  uint16_t* dst = result.ptr<uint16_t>();
  for (int64_t o = 0; o < out; ++o) {
    const uint8_t* row = wq + o * in;
    uint16_t* drow = dst + o * in;
    if (quant == ops::WeightQuant::kFp8Block) {
      const float* srow = s + (o / block_out) * scale_cols;
      for (int64_t i = 0; i < in; ++i) drow[i] = f32_to_bf16(lut[row[i]] * srow[i / block_in]);
    } else {
      const float so = quant == ops::WeightQuant::kFp8Tensor ? s[0] : s[o];
      for (int64_t i = 0; i < in; ++i) drow[i] = f32_to_bf16(lut[row[i]] * so);
    }
  }
  return result;
}

}  // namespace tandem::loader
