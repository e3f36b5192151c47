// FP8 e4m3 weight dequantisation used at load time (LinearLoad::kDequantize): W[o][i] = Wq[o][i] * s(o, i),
// the compressed-tensors `_dequantize` / DeepSeek `weight_dequant` rule (both multiply by the stored scale).
#pragma once

#include <cstdint>

#include "ops/ops.h"
#include "tensor/tensor.h"

namespace tandem::loader {

/// weight [out, in] f8_e4m3; scale f32: kFp8Tensor [1], kFp8Channel [out], kFp8Block [ceil(out/bo),
/// ceil(in/bi)]. Returns an owned [out, in] bf16 buffer, each element rounded to nearest even from the f32
/// product.
Buffer dequantize_fp8(const Tensor& weight, const Tensor& scale, ops::WeightQuant quant, int block_out,
                      int block_in);

}  // namespace tandem::loader
