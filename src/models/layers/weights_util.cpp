#include "models/layers/weights_util.h"

namespace tandem::models {

ops::MlpWeights load_mlp(loader::WeightMap& wm, const std::string& p, int64_t I, int64_t H,
                         loader::LinearLoad load) {
  using loader::Bias;
  return ops::MlpWeights{.gate_proj = wm.linear(p + "gate_proj", I, H, Bias::kNone, load),
                         .up_proj = wm.linear(p + "up_proj", I, H, Bias::kNone, load),
                         .down_proj = wm.linear(p + "down_proj", H, I, Bias::kNone, load)};
}

Tensor as_f32(const Tensor& t, std::vector<Buffer>& owned) {
  if (t.empty() || t.dtype == DType::kF32) return t;
  Buffer b(DType::kF32, t.shape);
  float* d = b.ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (t.dtype) {
      case DType::kBF16: d[i] = bf16_to_f32(t.ptr<uint16_t>()[i]); break;
      case DType::kF16: d[i] = f16_to_f32(t.ptr<uint16_t>()[i]); break;
      default: fail("as_f32: cannot convert {} tensor {}", dtype_name(t.dtype), t.shape.str());
    }
  }
  Tensor v = b.view();
  owned.push_back(std::move(b));
  return v;
}

}  // namespace tandem::models
