#include "models/layers/weights_util.h"

namespace tandem::models {

ops::MlpWeights load_mlp(loader::WeightMap& wm, const std::string& p, int64_t I, int64_t H,
                         loader::LinearLoad load) {
  using loader::Bias;
  return ops::MlpWeights{.gate_proj = wm.linear(p + "gate_proj", I, H, Bias::kNone, load),
                         .up_proj = wm.linear(p + "up_proj", I, H, Bias::kNone, load),
                         .down_proj = wm.linear(p + "down_proj", H, I, Bias::kNone, load)};
}

}  // namespace tandem::models
