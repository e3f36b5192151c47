// A Hugging Face model folder: config.json, optional generation_config.json, and the weights, either one
// model.safetensors or shards listed by model.safetensors.index.json. Every *.safetensors file in the folder
// is opened, because some exports keep tensors (e.g. a GLM MTP layer in mtp.safetensors) outside the index.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "loader/safetensors.h"

namespace tandem::loader {

class Checkpoint {
 public:
  /// Throws tandem::Error when config.json is missing or invalid, a file the index references is missing,
  /// a tensor the index places in a file is not there, or one tensor name appears in two files.
  static std::unique_ptr<Checkpoint> open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const nlohmann::json& config() const { return config_; }
  /// generation_config.json, or nullptr when the folder has none.
  const nlohmann::json* generation_config() const {
    return has_generation_config_ ? &generation_config_ : nullptr;
  }
  /// nullptr if absent.
  const TensorInfo* find(std::string_view name) const;
  /// All tensor names, sorted.
  std::vector<std::string> tensor_names() const;
  /// Sum of every tensor's bytes.
  size_t total_bytes() const;
  /// The safetensors files opened (names relative to dir()), sorted.
  std::vector<std::string> files() const;
  /// Tensors found by scanning files that model.safetensors.index.json does not map (0 without an index).
  size_t tensors_outside_index() const { return outside_index_; }

 private:
  Checkpoint() = default;
  void open_weights();
  void add_file(const std::string& name);

  std::filesystem::path dir_;
  nlohmann::json config_;
  nlohmann::json generation_config_;
  bool has_generation_config_ = false;
  std::map<std::string, std::unique_ptr<SafetensorsFile>> files_;  // by file name
  std::map<std::string, const TensorInfo*, std::less<>> tensors_;  // by tensor name
  size_t outside_index_ = 0;
};

}  // namespace tandem::loader
