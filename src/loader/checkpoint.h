// A Hugging Face model folder: config.json, optional generation_config.json, and the weights, either one
// model.safetensors or shards listed by model.safetensors.index.json. Every *.safetensors file in the folder
// is opened, because some exports keep tensors (e.g. a GLM MTP layer in mtp.safetensors) outside the index.
// For --load-format dummy a folder is opened without its weights (config.json is all it needs), and
// --json-model-override-args replaces top-level config.json keys as the folder is opened.
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

struct CheckpointOptions {
  /// false: read config.json (and generation_config.json) only; the checkpoint then holds no tensor.
  bool read_weights = true;
  /// A JSON object whose keys replace config.json's top-level keys (SGLang's dict update: a nested object is
  /// replaced whole), or null. config() returns the result; which keys a model may override is the model's
  /// business (models/config_overrides.h).
  nlohmann::json config_overrides;
};

/// Replaces config's top-level keys by those of `overrides` (an object; null changes nothing; anything else
/// throws tandem::Error): what Checkpoint::open does with CheckpointOptions::config_overrides.
void merge_config_overrides(nlohmann::json& config, const nlohmann::json& overrides);

class Checkpoint {
 public:
  /// Throws tandem::Error when config.json is missing or invalid, config_overrides is neither null nor an
  /// object, a file the index references is missing, a tensor the index places in a file is not there, or one
  /// tensor name appears in two files. Every JSON file is parsed with a nesting limit (core/json_text.h). A
  /// file the index names must lie inside `dir`: an absolute path, a path with "..", or a symlink whose
  /// target is outside `dir` is an error naming the index entry and the path (exception: in a Hugging Face
  /// hub cache snapshot, <repo>/snapshots/<rev>, links into <repo>/blobs are followed). *.safetensors files
  /// found in `dir` itself are opened as they are, symlinks included.
  static std::unique_ptr<Checkpoint> open(const std::filesystem::path& dir,
                                          const CheckpointOptions& options = {});

  const std::filesystem::path& dir() const { return dir_; }
  /// config.json with the overrides it was opened with applied.
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
