#include "loader/dummy_weight_map.h"

#include <algorithm>
#include <cmath>

#include "ops/fill_random.h"

namespace tandem::loader {

namespace {

// Value ranges (the file comment of dummy_weight_map.h says why).
constexpr float kNormLo = 0.9f, kNormHi = 1.1f;
constexpr float kEmbedBound = 1.0f;
constexpr float kRouterBiasBound = 0.01f;
constexpr float kFp8Max = 448.0f;                        // e4m3's largest finite value
constexpr float kFp8ScaleLo = 0.5f, kFp8ScaleHi = 1.0f;  // times 1 / (448 sqrt(in))

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

/// FNV-1a of a tensor name: a fixed 64-bit key per name, independent of load order.
uint64_t name_key(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

ops::WeightQuant weight_quant(WeightStrategy s) {
  switch (s) {
    case WeightStrategy::kTensor:
      return ops::WeightQuant::kFp8Tensor;
    case WeightStrategy::kChannel:
      return ops::WeightQuant::kFp8Channel;
    case WeightStrategy::kBlock:
      return ops::WeightQuant::kFp8Block;
  }
  return ops::WeightQuant::kNone;
}

}  // namespace

DummyWeightMap::DummyWeightMap(const Checkpoint& ckpt, const QuantConfig& quant, ops::Backend& backend,
                               DummyOptions options)
    : WeightMap(ckpt, quant), backend_(backend), options_(options) {
  TANDEM_CHECK(options_.weight_dtype == DType::kBF16 || options_.weight_dtype == DType::kF16 ||
                   options_.weight_dtype == DType::kF32,
               "--load-format dummy: unquantized weights must be BF16, F16 or F32, not {}",
               dtype_name(options_.weight_dtype));
}

uint64_t DummyWeightMap::tensor_seed(uint64_t seed, const std::string& name) {
  return ops::fill_random::hash(seed, name_key(name));
}

Tensor DummyWeightMap::make(const std::string& name, DType dtype, Shape shape, float lo, float hi) {
  Buffer b = backend_.alloc(dtype, shape);
  backend_.fill_random(b.tensor(), tensor_seed(options_.seed, name), lo, hi);
  return keep(std::move(b));
}

Tensor DummyWeightMap::tensor(const std::string& name, Shape expected, std::initializer_list<DType> allowed) {
  const bool weight_dtype_ok = allowed.size() == 0 || std::find(allowed.begin(), allowed.end(),
                                                                options_.weight_dtype) != allowed.end();
  const DType dtype = weight_dtype_ok ? options_.weight_dtype : *allowed.begin();
  // Plain tensors of the name tables are norm weights (*norm.weight) and embedding tables.
  if (name.ends_with("norm.weight")) return make(name, dtype, expected, kNormLo, kNormHi);
  return make(name, dtype, expected, -kEmbedBound, kEmbedBound);
}

Tensor DummyWeightMap::optional_tensor(const std::string&, Shape, std::initializer_list<DType>) {
  return {};
}

Tensor DummyWeightMap::f32_tensor(const std::string& name, Shape expected) {
  // The name tables ask for one f32 tensor: the router's e_score_correction_bias (selection only).
  return make(name, DType::kF32, expected, -kRouterBiasBound, kRouterBiasBound);
}

ops::LinearWeight DummyWeightMap::linear(const std::string& prefix, int64_t out, int64_t in, Bias bias,
                                         LinearLoad load) {
  TANDEM_CHECK(out > 0 && in > 0, "--load-format dummy: linear '{}' of shape [{}, {}]", prefix, out, in);
  const float bound = 1.0f / std::sqrt(static_cast<float>(in));
  const bool stored_fp8 = quant().quantizes(prefix);
  const bool fp8 = stored_fp8 && load == LinearLoad::kAsStored;
  ops::LinearWeight lw;
  if (bias == Bias::kRequired)
    lw.bias = make(prefix + ".bias", DType::kF32, Shape{out}, -bound, bound);  // [out]
  if (!fp8) {
    // A dequantized fp8 linear is what dequantize_fp8 makes: bf16.
    const DType dtype = stored_fp8 ? DType::kBF16 : options_.weight_dtype;
    lw.weight = make(prefix + ".weight", dtype, Shape{out, in}, -bound, bound);  // [out, in]
  } else {
    lw.quant = weight_quant(quant().weight_strategy);
    Shape scale_shape{1};  // kFp8Tensor
    if (lw.quant == ops::WeightQuant::kFp8Channel) scale_shape = Shape{out};
    if (lw.quant == ops::WeightQuant::kFp8Block) {
      lw.block_out = quant().block_out;
      lw.block_in = quant().block_in;
      TANDEM_CHECK(lw.block_out > 0 && lw.block_in > 0, "block-scaled FP8 needs a block size, got {}x{}",
                   lw.block_out, lw.block_in);
      scale_shape = Shape{ceil_div(out, lw.block_out), ceil_div(in, lw.block_in)};
    }
    lw.weight = make(prefix + ".weight", DType::kF8E4M3, Shape{out, in}, -kFp8Max, kFp8Max);  // [out, in]
    const float unit = bound / kFp8Max;
    lw.scale =
        make(prefix + ".weight_scale", DType::kF32, scale_shape, kFp8ScaleLo * unit, kFp8ScaleHi * unit);
  }
  record({prefix, stored_fp8 ? DType::kF8E4M3 : options_.weight_dtype, lw.quant, stored_fp8 && !fp8,
          lw.nbytes()});
  return lw;
}

}  // namespace tandem::loader
