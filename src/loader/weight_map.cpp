#include "loader/weight_map.h"

#include <algorithm>
#include <cstring>

#include "loader/fp8_dequant.h"

namespace tandem::loader {

namespace {

constexpr std::initializer_list<DType> kPlainWeightTypes = {DType::kBF16, DType::kF16, DType::kF32};

std::string dtype_list(std::initializer_list<DType> allowed) {
  if (allowed.size() == 0) return "any dtype";
  std::string s;
  for (DType d : allowed) s += (s.empty() ? "" : "|") + std::string(dtype_name(d));
  return s;
}

bool allows(std::initializer_list<DType> allowed, DType d) {
  return allowed.size() == 0 || std::find(allowed.begin(), allowed.end(), d) != allowed.end();
}

// Element i as f32, read with memcpy because mapped bytes need not be aligned.
double element(const TensorInfo& t, int64_t i) {
  const auto* p = static_cast<const uint8_t*>(t.data) + static_cast<size_t>(i) * dtype_size(t.dtype);
  switch (t.dtype) {
    case DType::kF32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kBF16:
    case DType::kF16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return t.dtype == DType::kBF16 ? bf16_to_f32(v) : f16_to_f32(v);
    }
    case DType::kF8E4M3:
      return f8e4m3_to_f32(*p);
    case DType::kI32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kI64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return static_cast<double>(v);
    }
  }
  return 0;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

WeightMap::WeightMap(const Checkpoint& ckpt, const QuantConfig& quant, LinearHook on_linear, TensorHook on_tensor)
    : ckpt_(ckpt), quant_(quant), on_linear_(std::move(on_linear)), on_tensor_(std::move(on_tensor)) {
  if (quant_.weight_strategy == WeightStrategy::kBlock && quant_.method != QuantMethod::kNone)
    TANDEM_CHECK(quant_.block_out > 0 && quant_.block_in > 0,
                 "block-scaled FP8 needs a block size, got {}x{}", quant_.block_out, quant_.block_in);
}

Tensor WeightMap::usable_view(const TensorInfo& t) {
  // Kernels read elements through typed pointers, so a tensor at an offset that is not a multiple of its
  // element size (legal in safetensors, never produced by HF's writer) gets an aligned copy.
  if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) == 0) return t.view();
  Buffer b(t.dtype, t.shape);
  std::memcpy(b.tensor().data, t.data, t.nbytes);
  Tensor v = b.view();
  owned_.push_back(std::move(b));
  return v;
}

Tensor WeightMap::get(const std::string& name, Shape expected, std::initializer_list<DType> allowed,
                      bool required) {
  const TensorInfo* t = ckpt_.find(name);
  if (t == nullptr) {
    if (required)
      error("missing tensor '{}': expected shape {}, dtype {}", name, expected.str(), dtype_list(allowed));
    return {};
  }
  used_.insert(t);
  bool ok = true;
  if (!(t->shape == expected)) {
    error("tensor '{}' in {}: expected shape {}, got {}", name, t->file, expected.str(), t->shape.str());
    ok = false;
  }
  if (!allows(allowed, t->dtype)) {
    error("tensor '{}' in {}: expected dtype {}, got {}", name, t->file, dtype_list(allowed),
          dtype_name(t->dtype));
    ok = false;
  }
  return ok ? usable_view(*t) : Tensor{};
}

Tensor WeightMap::hooked(Tensor t) {
  if (on_tensor_ && !t.empty()) on_tensor_(t, owned_);
  return t;
}

Tensor WeightMap::tensor(const std::string& name, Shape expected, std::initializer_list<DType> allowed) {
  return hooked(get(name, expected, allowed, true));
}

Tensor WeightMap::optional_tensor(const std::string& name, Shape expected,
                                  std::initializer_list<DType> allowed) {
  return hooked(get(name, expected, allowed, false));
}

Tensor WeightMap::f32_tensor(const std::string& name, Shape expected) {
  const Tensor t = get(name, expected, kPlainWeightTypes, true);
  if (t.empty() || t.dtype == DType::kF32) return hooked(t);
  Buffer b(DType::kF32, t.shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const uint16_t v = t.ptr<uint16_t>()[i];
    b.ptr<float>()[i] = t.dtype == DType::kBF16 ? bf16_to_f32(v) : f16_to_f32(v);
  }
  Tensor v = b.view();
  owned_.push_back(std::move(b));
  return hooked(v);
}

bool WeightMap::check_zero_point(const TensorInfo& zp, const TensorInfo& weight) {
  for (int64_t i = 0; i < zp.shape.numel(); ++i) {
    if (element(zp, i) != 0.0) {
      error("'{}' in {} (zero point of '{}') has non-zero entries: asymmetric quantization is not supported",
            zp.name, zp.file, weight.name);
      return false;
    }
  }
  return true;
}

ops::LinearWeight WeightMap::linear(const std::string& prefix, int64_t out, int64_t in, Bias bias,
                                    LinearLoad load) {
  ops::LinearWeight lw = load_linear(prefix, out, in, bias, load);
  if (on_linear_ && !lw.weight.empty()) on_linear_(lw, owned_);
  return lw;
}

ops::LinearWeight WeightMap::load_linear(const std::string& prefix, int64_t out, int64_t in, Bias bias,
                                         LinearLoad load) {
  const size_t errors_before = errors_.size();
  ops::LinearWeight lw;
  // The bias is part of the linear: the linear hook (Backend::load_linear) prepares it, not the tensor hook.
  if (bias != Bias::kNone) lw.bias = get(prefix + ".bias", Shape{out}, kPlainWeightTypes, bias == Bias::kRequired);

  const std::string wname = prefix + ".weight";
  const Shape wshape{out, in};
  const TensorInfo* w = ckpt_.find(wname);
  if (w == nullptr) {
    error("missing tensor '{}': expected shape {}, dtype BF16|F16|F32 (or F8_E4M3 with a scale)", wname,
          wshape.str());
    return {};
  }
  used_.insert(w);
  if (!(w->shape == wshape)) {
    error("tensor '{}' in {}: expected shape {}, got {}", wname, w->file, wshape.str(), w->shape.str());
    return {};
  }

  const TensorInfo* ct_scale = ckpt_.find(prefix + ".weight_scale");
  const TensorInfo* ds_scale = ckpt_.find(prefix + ".weight_scale_inv");
  const TensorInfo* zero_point = ckpt_.find(prefix + ".weight_zero_point");
  if (const TensorInfo* input_scale = ckpt_.find(prefix + ".input_scale")) {
    used_.insert(input_scale);
    error("'{}' in {} (beside '{}'): static activation scales are not supported", input_scale->name,
          input_scale->file, wname);
  }

  if (w->dtype != DType::kF8E4M3) {
    if (!allows(kPlainWeightTypes, w->dtype))
      error("tensor '{}' in {}: expected dtype BF16|F16|F32 or F8_E4M3, got {}", wname, w->file,
            dtype_name(w->dtype));
    for (const TensorInfo* s : {ct_scale, ds_scale, zero_point}) {
      if (s == nullptr) continue;
      used_.insert(s);
      error("'{}' in {} is present but weight '{}' is {}, not F8_E4M3", s->name, s->file, wname,
            dtype_name(w->dtype));
    }
    if (errors_.size() != errors_before) return {};
    lw.weight = usable_view(*w);
    records_.push_back({prefix, w->dtype, ops::WeightQuant::kNone, false, lw.nbytes()});
    return lw;
  }

  // F8_E4M3 weight: it must come with its scale, in a quantized, non-ignored module.
  if (quant_.method == QuantMethod::kNone) {
    error("tensor '{}' in {} is F8_E4M3 but config.json has no quantization_config", wname, w->file);
    return {};
  }
  if (quant_.is_ignored(prefix)) {
    error("tensor '{}' in {} is F8_E4M3 but module '{}' is listed in quantization_config.ignore", wname,
          w->file, prefix);
    return {};
  }
  const bool deepseek = quant_.method == QuantMethod::kFp8;
  const TensorInfo* s = deepseek ? ds_scale : ct_scale;
  const TensorInfo* other = deepseek ? ct_scale : ds_scale;
  const std::string scale_name = prefix + (deepseek ? ".weight_scale_inv" : ".weight_scale");
  if (s == nullptr) {
    error("F8_E4M3 weight '{}' in {} has no scale '{}'{}", wname, w->file, scale_name,
          other == nullptr ? std::string()
                           : fmt::format(" (found '{}', which quant_method {} does not use)", other->name,
                                         deepseek ? "fp8" : "compressed-tensors"));
    return {};
  }
  used_.insert(s);
  if (!allows({DType::kBF16, DType::kF16, DType::kF32}, s->dtype))
    error("scale '{}' in {} of weight '{}': expected dtype BF16|F16|F32, got {}", s->name, s->file, wname,
          dtype_name(s->dtype));

  ops::WeightQuant kind = ops::WeightQuant::kNone;
  Shape scale_shape;  // the f32 shape handed to the backend
  std::string expected;
  bool shape_ok = false;
  switch (quant_.weight_strategy) {
    case WeightStrategy::kTensor:
      kind = ops::WeightQuant::kFp8Tensor;
      scale_shape = Shape{1};
      shape_ok = s->shape == Shape{1} || s->shape.rank == 0;
      expected = "[1] or [] (strategy tensor)";
      break;
    case WeightStrategy::kChannel:
      kind = ops::WeightQuant::kFp8Channel;
      scale_shape = Shape{out};
      shape_ok = s->shape == Shape{out, 1} || s->shape == Shape{out};
      expected = fmt::format("[{}, 1] or [{}] (strategy channel)", out, out);
      break;
    case WeightStrategy::kBlock:
      kind = ops::WeightQuant::kFp8Block;
      scale_shape = Shape{ceil_div(out, quant_.block_out), ceil_div(in, quant_.block_in)};
      shape_ok = s->shape == scale_shape;
      expected = fmt::format("{} (block {}x{})", scale_shape.str(), quant_.block_out, quant_.block_in);
      break;
  }
  if (!shape_ok)
    error("scale '{}' in {} of weight '{}' {}: expected shape {}, got {}", s->name, s->file, wname,
          wshape.str(), expected, s->shape.str());
  if (zero_point != nullptr) {
    used_.insert(zero_point);
    check_zero_point(*zero_point, *w);
  }
  if (errors_.size() != errors_before) return {};

  Buffer scale(DType::kF32, scale_shape);
  for (int64_t i = 0; i < scale_shape.numel(); ++i)
    scale.ptr<float>()[i] = static_cast<float>(element(*s, i));
  const int bo = kind == ops::WeightQuant::kFp8Block ? quant_.block_out : 0;
  const int bi = kind == ops::WeightQuant::kFp8Block ? quant_.block_in : 0;
  if (load == LinearLoad::kDequantize) {
    Buffer dq = dequantize_fp8(w->view(), scale.view(), kind, bo, bi);
    lw.weight = dq.view();
    owned_.push_back(std::move(dq));
  } else {
    lw.weight = w->view();  // 1-byte elements: always aligned
    lw.scale = scale.view();
    lw.quant = kind;
    lw.block_out = bo;
    lw.block_in = bi;
    owned_.push_back(std::move(scale));
  }
  records_.push_back({prefix, w->dtype, lw.quant, load == LinearLoad::kDequantize, lw.nbytes()});
  return lw;
}

std::vector<std::string> WeightMap::finish(std::span<const std::string> not_for_this_model) {
  if (!errors_.empty()) {
    std::string msg = fmt::format("{} problem{} loading {}:", errors_.size(), errors_.size() == 1 ? "" : "s",
                                  ckpt_.dir().string());
    for (const auto& e : errors_) msg += "\n  " + e;
    throw Error(msg);
  }
  std::vector<std::string> unused;
  for (const auto& name : ckpt_.tensor_names()) {
    if (used_.contains(ckpt_.find(name))) continue;
    const bool skipped = std::any_of(not_for_this_model.begin(), not_for_this_model.end(),
                                     [&](const std::string& p) { return name.starts_with(p); });
    if (!skipped) unused.push_back(name);
  }
  return unused;
}

Tensor WeightMap::keep(Buffer b) {
  const Tensor v = b.view();
  owned_.push_back(std::move(b));
  return v;
}

std::vector<Buffer> WeightMap::take_owned() {
  return std::move(owned_);
}

}  // namespace tandem::loader
