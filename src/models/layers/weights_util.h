// Small helpers shared by the model name tables.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "loader/weight_map.h"

namespace tandem::models {

inline constexpr std::initializer_list<DType> kFloatTypes = {DType::kBF16, DType::kF16, DType::kF32};

/// A SwiGLU MLP under `prefix` ("...mlp." or "...experts.3."): gate_proj/up_proj [I, H], down_proj [H, I].
ops::MlpWeights load_mlp(loader::WeightMap& wm, const std::string& prefix, int64_t intermediate, int64_t hidden,
                         loader::LinearLoad load);

}  // namespace tandem::models
