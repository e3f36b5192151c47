// FP8 (float8_e4m3fn) weight quantization, symmetric, per output channel or per 2-D block. The algorithm is
// fixed so that `tandem quantize` and tools/make_fixtures.py produce identical bytes:
//   amax over the channel / block; scale = amax / 448 (1 when amax == 0), rounded to the stored scale dtype;
//   q = e4m3(clamp(w / scale, -448, 448)) with round-to-nearest-even.
#pragma once

#include "tensor/tensor.h"

namespace tandem::quant {

enum class Fp8Strategy { kChannel, kBlock };

struct Fp8Quantized {
  Buffer weight;  // [out, in] f8_e4m3
  Buffer scale;   // channel: [out, 1]; block: [ceil(out/bo), ceil(in/bi)]; dtype as requested (BF16 or F32)
};

/// w: [out, in] bf16 | f16 | f32.
Fp8Quantized quantize_fp8(const Tensor& w, Fp8Strategy strategy, int block_out, int block_in, DType scale_dtype);

/// Reference dequantisation to f32: W[o][i] = q[o][i] * scale(o, i). Out [out, in] f32.
Buffer dequantize_fp8(const Tensor& q, const Tensor& scale, Fp8Strategy strategy, int block_out, int block_in);

}  // namespace tandem::quant
