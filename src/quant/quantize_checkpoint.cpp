#include "quant/quantize_checkpoint.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "core/error.h"
#include "core/json_text.h"
#include "loader/checkpoint.h"
#include "loader/quant_config.h"
#include "loader/safetensors_writer.h"

namespace tandem::quant {

namespace fs = std::filesystem;

const std::vector<std::string>& default_ignore() {
  static const std::vector<std::string> kIgnore = {"lm_head", "re:.*eh_proj$", "re:.*shared_head\\.head$",
                                                   "re:.*mlp\\.gate$"};
  return kIgnore;
}

namespace {

bool is_projection(const std::string& name, const loader::TensorInfo& t) {
  static const std::set<std::string> kLeaves = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  if (!name.ends_with(".weight") || t.shape.rank != 2) return false;
  if (t.dtype != DType::kBF16 && t.dtype != DType::kF16 && t.dtype != DType::kF32) return false;
  const std::string module = name.substr(0, name.size() - 7);
  const auto dot = module.rfind('.');
  return kLeaves.contains(dot == std::string::npos ? module : module.substr(dot + 1));
}

nlohmann::json quantization_config(const QuantizeOptions& o) {
  const bool block = o.strategy == Fp8Strategy::kBlock;
  if (o.format == CheckpointFormat::kDeepSeekFp8)
    return {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "dynamic"},
            {"weight_block_size", {o.block, o.block}}};
  nlohmann::json weights = {{"num_bits", 8}, {"type", "float"}, {"strategy", block ? "block" : "channel"},
                            {"symmetric", true}, {"dynamic", false}, {"group_size", nullptr}, {"observer", "minmax"},
                            {"block_structure", block ? nlohmann::json{o.block, o.block} : nlohmann::json(nullptr)}};
  nlohmann::json acts = {{"num_bits", 8}, {"type", "float"}, {"strategy", block ? "group" : "token"},
                         {"group_size", block ? nlohmann::json(o.block) : nlohmann::json(nullptr)},
                         {"symmetric", true}, {"dynamic", true}};
  return {{"quant_method", "compressed-tensors"},
          {"format", "float-quantized"},
          {"quantization_status", "compressed"},
          {"config_groups", {{"group_0", {{"targets", {"Linear"}}, {"weights", weights}, {"input_activations", acts}}}}},
          {"ignore", default_ignore()}};
}

}  // namespace

QuantizeReport quantize_checkpoint(const fs::path& in, const fs::path& out, const QuantizeOptions& o) {
  if (o.format == CheckpointFormat::kDeepSeekFp8 && o.strategy != Fp8Strategy::kBlock)
    fail("--format fp8 (DeepSeek style) stores 2-D block scales: use --scheme fp8-block");
  auto ckpt = loader::Checkpoint::open(in);
  if (ckpt->config().contains("quantization_config"))
    fail("{} is already quantized (config.json has quantization_config)", in.string());
  if (fs::exists(out) && !fs::is_empty(out)) fail("output folder {} exists and is not empty", out.string());
  fs::create_directories(out);

  nlohmann::json qc = quantization_config(o);
  const loader::QuantConfig parsed = loader::QuantConfig::from_hf({{"quantization_config", qc}});  // validates
  QuantizeReport rep;
  std::map<std::string, loader::SafetensorsWriter> writers;  // by file name
  std::map<std::string, std::string> weight_map;
  const bool ct = o.format == CheckpointFormat::kCompressedTensors;
  for (const auto& name : ckpt->tensor_names()) {
    const loader::TensorInfo& t = *ckpt->find(name);
    auto& w = writers[t.file];
    rep.bytes_in += t.nbytes;
    const std::string module = name.ends_with(".weight") ? name.substr(0, name.size() - 7) : name;
    if (is_projection(name, t) && !parsed.is_ignored(module)) {
      const Fp8Quantized q = quantize_fp8(t.view(), o.strategy, o.block, o.block, ct ? DType::kBF16 : DType::kF32);
      w.add(name, DType::kF8E4M3, q.weight.tensor().shape, q.weight.tensor().data);
      const std::string scale_name = module + (ct ? ".weight_scale" : ".weight_scale_inv");
      w.add(scale_name, q.scale.tensor().dtype, q.scale.tensor().shape, q.scale.tensor().data);
      weight_map[scale_name] = t.file;
      rep.bytes_out += q.weight.tensor().nbytes() + q.scale.tensor().nbytes();
      ++rep.quantized;
    } else {
      w.add(name, t.dtype, t.shape, t.data);
      rep.bytes_out += t.nbytes;
      ++rep.kept;
    }
    weight_map[name] = t.file;
  }
  for (auto& [file, w] : writers) w.write(out / file);

  nlohmann::json config = ckpt->config();
  config["quantization_config"] = qc;
  std::ofstream(out / "config.json") << config.dump(2) << "\n";
  const fs::path index = in / "model.safetensors.index.json";
  if (fs::exists(index)) {
    std::ifstream f(index, std::ios::binary);
    const std::string text{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    nlohmann::json idx = parse_json_text<nlohmann::json>(text, index.string());
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      fail("{}: expected an object with a \"weight_map\" object", index.string());
    nlohmann::json wm = nlohmann::json::object();
    // Keep the index's view of the world: tensors it did not list (e.g. an mtp.safetensors) stay unlisted.
    for (const auto& [name, file] : weight_map) {
      const std::string weight = name.ends_with("_scale") ? name.substr(0, name.size() - 6)
                                 : name.ends_with("_scale_inv") ? name.substr(0, name.size() - 10)
                                                                : name;
      if (idx["weight_map"].contains(weight)) wm[name] = file;
    }
    idx["weight_map"] = wm;
    idx["metadata"]["total_size"] = rep.bytes_out;
    std::ofstream(out / "model.safetensors.index.json") << idx.dump(2) << "\n";
  }
  for (const auto& entry : fs::directory_iterator(in)) {  // tokenizer, generation config, model card...
    const auto fname = entry.path().filename().string();
    if (!entry.is_regular_file() || fname == "config.json" || fname == "model.safetensors.index.json" ||
        entry.path().extension() == ".safetensors")
      continue;
    fs::copy_file(entry.path(), out / fname);
  }
  return rep;
}

}  // namespace tandem::quant
