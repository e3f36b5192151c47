// The checked bridge between a checkpoint and a model's weight structs. A model asks for each tensor by
// name with the shape and dtypes it expects; problems are collected (not thrown) so one failed load reports
// every missing / misshapen / mistyped tensor at once, and finish() reports what nothing consumed.
// Linear layers are decided per tensor from the file: FP8 iff the weight is F8_E4M3 and its scale exists.
// DummyWeightMap (loader/dummy_weight_map.h) answers the same calls without a file (--load-format dummy).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <functional>
#include <unordered_set>
#include <vector>

#include "loader/checkpoint.h"
#include "loader/quant_config.h"
#include "ops/ops.h"

namespace tandem::loader {

/// kDequantize: an fp8 linear is expanded to bf16 at load (owned buffer); unquantized linears are unchanged.
enum class LinearLoad { kAsStored, kDequantize };
enum class Bias { kNone, kRequired, kOptional };

class WeightMap {
 public:
  /// Called on every linear() that loaded without error, with the WeightMap's owned-buffer list: the backend
  /// prepares the weight once at load (ops::Backend::load_linear).
  using LinearHook = std::function<void(ops::LinearWeight&, std::vector<Buffer>& owned)>;
  /// Called on every plain tensor that loaded without error (ops::Backend::load_weight).
  using TensorHook = std::function<void(Tensor&, std::vector<Buffer>& owned)>;

  /// Both must outlive the WeightMap; the returned views point into `ckpt`'s mappings (or, after a hook, into
  /// the backend's memory).
  WeightMap(const Checkpoint& ckpt, const QuantConfig& quant, LinearHook on_linear = {}, TensorHook on_tensor = {});
  virtual ~WeightMap() = default;
  WeightMap(const WeightMap&) = delete;
  WeightMap& operator=(const WeightMap&) = delete;

  /// A required plain tensor (norm weights, embeddings, router gate, biases...). Checks the shape and that
  /// the dtype is in `allowed` (an empty list allows any). Errors are collected, not thrown; returns an empty
  /// Tensor on error. A tensor whose mapped bytes are misaligned for its dtype is copied to an owned buffer.
  virtual Tensor tensor(const std::string& name, Shape expected, std::initializer_list<DType> allowed);
  /// Same, but absent is fine (returns an empty Tensor). Present with a wrong shape/dtype is still an error.
  virtual Tensor optional_tensor(const std::string& name, Shape expected,
                                 std::initializer_list<DType> allowed);
  /// A required BF16 / F16 / F32 tensor converted to f32 (an owned buffer unless already f32), for weights the
  /// ops take as f32 (the router's e_score_correction_bias).
  virtual Tensor f32_tensor(const std::string& name, Shape expected);

  /// "prefix.weight" [out, in] (+ "prefix.bias" [out] per `bias`), plus the fp8 scale when the weight is
  /// F8_E4M3: "prefix.weight_scale" (compressed-tensors) or "prefix.weight_scale_inv" (quant_method fp8),
  /// BF16/F16/F32 in the file, returned as an owned f32 tensor: kFp8Tensor [1], kFp8Channel [out],
  /// kFp8Block [ceil(out/bo), ceil(in/bi)]. Unquantized weights may be BF16, F16 or F32. A zero
  /// "prefix.weight_zero_point" is consumed; a non-zero one, an "input_scale", a scale beside a non-fp8
  /// weight, an fp8 weight without scale / in an ignored module / without quantization_config are errors.
  /// Returns an empty LinearWeight on error.
  virtual ops::LinearWeight linear(const std::string& prefix, int64_t out, int64_t in, Bias bias,
                                   LinearLoad load = LinearLoad::kAsStored);

  /// Whether the checkpoint has this tensor (consumed or not).
  virtual bool has(const std::string& name) const { return ckpt_.find(name) != nullptr; }

  /// Throws one tandem::Error listing every collected problem. Otherwise returns the names of tensors that
  /// nothing consumed, minus those starting with any of `not_for_this_model` (e.g. the MTP layer when only
  /// the target is built); the caller logs them as a warning.
  std::vector<std::string> finish(std::span<const std::string> not_for_this_model = {});

  /// Buffers created during loading (dequantised weights, f32 scales, realigned tensors); the model keeps
  /// them alive for as long as it uses the returned views.
  std::vector<Buffer> take_owned();

  /// Per-linear record of what was decided, for `tandem inspect`.
  struct LinearRecord {
    std::string prefix;
    DType stored;            // dtype of prefix.weight in the file
    ops::WeightQuant quant;  // what runs (kNone after kDequantize)
    bool dequantized;
    size_t bytes;  // weight + scale + bias bytes as loaded
  };
  const std::vector<LinearRecord>& linear_records() const { return records_; }
  /// Problems collected so far (finish() throws them).
  const std::vector<std::string>& errors() const { return errors_; }

 protected:
  /// For a WeightMap that makes its tensors (DummyWeightMap): keeps `b` with the model, returns its view.
  Tensor keep(Buffer b);
  void record(LinearRecord r) { records_.push_back(std::move(r)); }
  const QuantConfig& quant() const { return quant_; }

 private:
  ops::LinearWeight load_linear(const std::string& prefix, int64_t out, int64_t in, Bias bias, LinearLoad load);
  Tensor get(const std::string& name, Shape expected, std::initializer_list<DType> allowed, bool required);
  Tensor hooked(Tensor t);
  Tensor usable_view(const TensorInfo& t);
  bool check_zero_point(const TensorInfo& zp, const TensorInfo& weight);
  template <typename... Args>
  void error(fmt::format_string<Args...> f, Args&&... args) {
    errors_.push_back(fmt::format(f, std::forward<Args>(args)...));
  }

  const Checkpoint& ckpt_;
  QuantConfig quant_;
  std::unordered_set<const TensorInfo*> used_;
  std::vector<std::string> errors_;
  LinearHook on_linear_;
  TensorHook on_tensor_;
  std::vector<Buffer> owned_;
  std::vector<LinearRecord> records_;
};

}  // namespace tandem::loader
