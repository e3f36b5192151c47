// --load-format dummy (vLLM's name): a WeightMap that makes every tensor a model's name table asks for
// instead of reading it from a file, so a full-size model (GLM-4.5-Air, GLM-4.7) can be run and benchmarked
// from its config.json alone. Each tensor is allocated on the backend's device at its real shape and stored
// dtype and filled there by Backend::fill_random: no host copy of the weights exists at any point.
//
// Dtypes, as the real loader would hand them to the backend:
//   * unquantized weights, norms and embeddings at the config's dtype (DummyOptions::weight_dtype, bf16
//     for the GLM releases); the router's e_score_correction_bias f32 (f32_tensor);
//   * a Linear the quantization_config quantizes (QuantConfig::quantizes, the memory plan's rule too) is an
//     F8_E4M3 weight with an f32 scale of the loader's shape: [1] (tensor), [out] (channel:
//     compressed-tensors), [ceil(out / bo), ceil(in / bi)] (block: compressed-tensors block, DeepSeek fp8);
//     one asked for with LinearLoad::kDequantize is made bf16, as the loader would expand it;
//   * biases f32, as Backend::load_linear would leave them.
// has() is false for every name, so optional tensors are absent: a NextN layer shares the target's
// embed_tokens and lm_head (as GLM-4.6 / 4.7 ship; the memory plan's default).
//
// Values: uniform in a range per kind of tensor, element i a function of (seed, tensor name, i) only, so a
// layer gets the same weights however many layers are built (--json-model-override-args num_hidden_layers). A
// Linear's dequantized weights lie within +-1/sqrt(in) (bf16: directly; fp8: weights over e4m3's range +-448
// times scales in [0.5, 1] / (448 sqrt(in))), so y = W x keeps |y| ~ |x| / sqrt(3) and, with the RMS norm
// before every block, a forward pass stays finite through any number of layers; biases +-1/sqrt(in); norm
// weights [0.9, 1.1]; embeddings +-1; the router's correction bias +-0.01.
#pragma once

#include <cstdint>

#include "loader/weight_map.h"

namespace tandem::loader {

struct DummyOptions {
  uint64_t seed = 0;                  // every tensor's values derive from it and the tensor's name
  DType weight_dtype = DType::kBF16;  // unquantized weights: config.json's dtype / torch_dtype
};

class DummyWeightMap final : public WeightMap {
 public:
  /// `ckpt`: the folder opened without weights (CheckpointOptions::read_weights = false). Every tensor is
  /// allocated from `backend` (which must outlive the returned views) and kept in the owned buffers
  /// (take_owned()).
  DummyWeightMap(const Checkpoint& ckpt, const QuantConfig& quant, ops::Backend& backend,
                 DummyOptions options);

  /// [expected] at weight_dtype, or the first of `allowed` when that does not allow weight_dtype.
  Tensor tensor(const std::string& name, Shape expected, std::initializer_list<DType> allowed) override;
  /// Absent: a dummy checkpoint holds only what the name table requires.
  Tensor optional_tensor(const std::string& name, Shape expected,
                         std::initializer_list<DType> allowed) override;
  /// [expected] f32.
  Tensor f32_tensor(const std::string& name, Shape expected) override;
  /// See the file comment. A Bias::kOptional bias is absent, a Bias::kRequired one made.
  ops::LinearWeight linear(const std::string& prefix, int64_t out, int64_t in, Bias bias,
                           LinearLoad load = LinearLoad::kAsStored) override;
  bool has(const std::string&) const override { return false; }

  /// The seed of tensor `name`'s values: (seed, name) hashed.
  static uint64_t tensor_seed(uint64_t seed, const std::string& name);

 private:
  /// A new [shape] `dtype` tensor on the backend filled uniformly in [lo, hi).
  Tensor make(const std::string& name, DType dtype, Shape shape, float lo, float hi);

  ops::Backend& backend_;
  DummyOptions options_;
};

}  // namespace tandem::loader
