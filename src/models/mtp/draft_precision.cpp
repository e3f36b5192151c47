#include "models/mtp/draft_precision.h"

namespace tandem::models::mtp {

DraftQuantRequest DraftQuantRequest::parse(const std::string& s) {
  DraftQuantRequest r;
  if (s.empty() || s == "auto") return r;
  if (s == "unquant") {
    r.mode = Mode::kUnquant;
    return r;
  }
  if (s == "fp8" || s == "compressed-tensors") {
    r.mode = Mode::kScheme;
    r.scheme = s;
    return r;
  }
  fail("--speculative-draft-model-quantization: unknown value '{}' (auto, unquant, fp8, compressed-tensors)", s);
}

std::string DraftQuantRequest::str() const {
  switch (mode) {
    case Mode::kAuto: return "auto";
    case Mode::kUnquant: return "unquant";
    case Mode::kScheme: return scheme;
  }
  return "?";
}

nlohmann::json DraftPrecision::to_json() const {
  return {{"quantization", running}, {"stored", stored}, {"reason", reason},
          {"dequantized_at_load", load == loader::LinearLoad::kDequantize}};
}

std::string scheme_name(const loader::QuantConfig& q) {
  std::string strategy = q.weight_strategy == loader::WeightStrategy::kTensor    ? "tensor"
                         : q.weight_strategy == loader::WeightStrategy::kChannel ? "channel"
                                                                                 : "block";
  if (q.weight_strategy == loader::WeightStrategy::kBlock)
    strategy += " " + std::to_string(q.block_out) + "x" + std::to_string(q.block_in);
  switch (q.method) {
    case loader::QuantMethod::kNone: return "none";
    case loader::QuantMethod::kCompressedTensors: return "fp8 compressed-tensors " + strategy;
    case loader::QuantMethod::kFp8: return "fp8 deepseek " + strategy;
  }
  return "?";
}

namespace {
ops::WeightQuant backend_quant(const loader::QuantConfig& q) {
  switch (q.weight_strategy) {
    case loader::WeightStrategy::kTensor: return ops::WeightQuant::kFp8Tensor;
    case loader::WeightStrategy::kChannel: return ops::WeightQuant::kFp8Channel;
    case loader::WeightStrategy::kBlock: return ops::WeightQuant::kFp8Block;
  }
  return ops::WeightQuant::kNone;
}
}  // namespace

DraftPrecision decide_draft_precision(const DraftQuantRequest& req, const loader::Checkpoint& ckpt,
                                      const loader::QuantConfig& quant, const std::string& prefix,
                                      const ops::Backend& backend) {
  // What the checkpoint stores for the MTP layer: fp8 if any of its weights is F8_E4M3.
  bool any_fp8 = false;
  DType plain = DType::kBF16;
  for (const auto& name : ckpt.tensor_names()) {
    if (name.rfind(prefix, 0) != 0) continue;
    const auto* t = ckpt.find(name);
    if (t->dtype == DType::kF8E4M3) any_fp8 = true;
    else if (name.ends_with(".weight") && (t->dtype == DType::kF32 || t->dtype == DType::kF16)) plain = t->dtype;
  }
  return decide_draft_precision(req, any_fp8, plain, quant, backend);
}

DraftPrecision decide_draft_precision(const DraftQuantRequest& req, bool any_fp8, DType plain,
                                      const loader::QuantConfig& quant, const ops::Backend& backend) {
  const std::string plain_name = plain == DType::kBF16 ? "bf16" : plain == DType::kF16 ? "f16" : "f32";
  DraftPrecision d;
  d.stored = any_fp8 ? scheme_name(quant) : plain_name;
  switch (req.mode) {
    case DraftQuantRequest::Mode::kAuto:
      if (!any_fp8) {
        d.running = d.stored;
        d.reason = "auto: the checkpoint stores the MTP layer unquantized";
      } else if (backend.supports(backend_quant(quant))) {
        d.running = d.stored;
        d.reason = "auto: the MTP layer is stored as " + d.stored + " and backend " + std::string(backend.name()) +
                   " runs it natively";
      } else {
        d.load = loader::LinearLoad::kDequantize;
        d.running = "bf16";
        d.reason = "auto: backend " + std::string(backend.name()) + " cannot run " + d.stored +
                   ", so the draft is dequantized to bf16 at load";
      }
      break;
    case DraftQuantRequest::Mode::kUnquant:
      d.load = any_fp8 ? loader::LinearLoad::kDequantize : loader::LinearLoad::kAsStored;
      d.running = any_fp8 ? "bf16" : d.stored;
      d.reason = any_fp8 ? "unquant requested: the fp8 MTP layer is dequantized to bf16 at load"
                         : "unquant requested: the MTP layer is already unquantized";
      break;
    case DraftQuantRequest::Mode::kScheme: {
      const bool matches = any_fp8 && ((req.scheme == "fp8" && quant.method == loader::QuantMethod::kFp8) ||
                                       (req.scheme == "compressed-tensors" &&
                                        quant.method == loader::QuantMethod::kCompressedTensors));
      if (!matches)
        fail("--speculative-draft-model-quantization {}: the checkpoint's MTP layer is stored as {}; tandem "
             "does not re-quantize a draft at load (use auto or unquant, or `tandem quantize` the checkpoint)",
             req.scheme, d.stored);
      if (!backend.supports(backend_quant(quant)))
        fail("--speculative-draft-model-quantization {}: backend {} cannot run {}", req.scheme, backend.name(),
             d.stored);
      d.running = d.stored;
      d.reason = req.scheme + " requested and matches the checkpoint";
      break;
    }
  }
  return d;
}

}  // namespace tandem::models::mtp
