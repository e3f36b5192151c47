#include "loader/checkpoint.h"

#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/json_text.h"
#include "core/log.h"

namespace tandem::loader {

namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {}", path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_json_text<nlohmann::json>(ss.str(), path.string());
}

// A safetensors file named by the index, confined to the checkpoint folder by name: an index (text anyone can
// write) naming "../../etc/shadow" or "/etc/shadow" would otherwise open any file the server can read and echo its
// bytes in header errors. A file the folder itself holds may be a symlink to anywhere (the Hugging Face hub cache
// links snapshots into blobs; a variant of a checkpoint with an edited config.json is a folder of links): whoever
// can place a link in the folder chose that file already. Returns the path to open.
std::filesystem::path confined_file(const std::filesystem::path& dir, const std::string& name,
                                    const std::string& named_by) {
  namespace fs = std::filesystem;
  const fs::path rel(name);
  if (name.empty() || name.find('\0') != std::string::npos)
    fail("{} names file '{}', which is not a file name", named_by, name);
  if (rel.has_root_path())
    fail("{} names file '{}', an absolute path; files must lie inside the checkpoint folder {}", named_by,
         name, dir.string());
  for (const fs::path& part : rel) {
    if (part == "..")
      fail("{} names file '{}', which climbs out with '..'; files must lie inside the checkpoint folder {}",
           named_by, name, dir.string());
  }
  return dir / rel;  // opened by its name in the folder, so messages and TensorInfo::file keep that name
}

}  // namespace

void merge_config_overrides(nlohmann::json& config, const nlohmann::json& overrides) {
  if (overrides.is_null()) return;
  if (!overrides.is_object()) fail("config overrides must be a JSON object, got {}", overrides.dump());
  for (const auto& [key, value] : overrides.items()) config[key] = value;
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::filesystem::path& dir,
                                             const CheckpointOptions& options) {
  std::unique_ptr<Checkpoint> c(new Checkpoint());
  c->dir_ = dir;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) fail("checkpoint directory {} does not exist", dir.string());

  const auto config_path = dir / "config.json";
  if (!std::filesystem::exists(config_path, ec))
    fail("{} has no config.json; is it a Hugging Face model folder?", dir.string());
  c->config_ = read_json_file(config_path);
  if (!c->config_.is_object()) fail("{} is not a JSON object", config_path.string());
  merge_config_overrides(c->config_, options.config_overrides);

  const auto gen_path = dir / "generation_config.json";
  if (std::filesystem::exists(gen_path, ec)) {
    c->generation_config_ = read_json_file(gen_path);
    if (!c->generation_config_.is_object()) fail("{} is not a JSON object", gen_path.string());
    c->has_generation_config_ = true;
  }
  if (options.read_weights) c->open_weights();
  return c;
}

void Checkpoint::add_file(const std::string& name) {
  if (files_.contains(name)) return;
  files_.emplace(name, SafetensorsFile::open(dir_ / name));
}

void Checkpoint::open_weights() {
  std::set<std::string> on_disk;  // every *.safetensors in the folder
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".") || entry.path().extension() != ".safetensors") continue;
    if (entry.is_regular_file(ec)) on_disk.insert(name);
  }
  if (ec) fail("cannot list {}: {}", dir_.string(), ec.message());

  const auto index_path = dir_ / kIndexName;
  std::map<std::string, std::string> weight_map;  // tensor -> file, from the index
  const bool has_index = std::filesystem::exists(index_path, ec);
  if (has_index) {
    const nlohmann::json index = read_json_file(index_path);
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      fail("{}: expected an object with a \"weight_map\" object", index_path.string());
    for (const auto& [tensor, file] : index["weight_map"].items()) {
      if (!file.is_string())
        fail("{}: weight_map[\"{}\"] must be a file name string, got {}", index_path.string(), tensor,
             file.dump());
      weight_map[tensor] = file.get<std::string>();
    }
    for (const auto& [tensor, file] : weight_map) {
      if (files_.contains(file)) continue;
      const std::string named_by = fmt::format("{}: weight_map[\"{}\"]", index_path.string(), tensor);
      if (!std::filesystem::is_regular_file(confined_file(dir_, file, named_by), ec))
        fail("{} maps tensor '{}' to {}, which does not exist in {}", index_path.string(), tensor, file,
             dir_.string());
      add_file(file);
    }
  } else if (on_disk.empty()) {
    fail("{} has neither {} nor any *.safetensors file", dir_.string(), kIndexName);
  }
  // Scan every other shard too: exports have shipped tensors (GLM's MTP layer) in files the index omits.
  // These are names the folder itself holds (a symlink placed there is followed: symlink farms of a
  // checkpoint with an edited config.json are a common way to make a variant); only the index's free-text
  // paths are confined.
  for (const auto& name : on_disk) add_file(name);

  for (const auto& [file_name, file] : files_) {
    for (const TensorInfo& t : file->tensors()) {
      const auto [it, inserted] = tensors_.emplace(t.name, &t);
      if (!inserted)
        fail("tensor '{}' is in both {} and {} (in {})", t.name, it->second->file, file_name, dir_.string());
      if (has_index && !weight_map.contains(t.name)) ++outside_index_;
    }
  }
  for (const auto& [tensor, file] : weight_map) {
    if (files_.at(file)->find(tensor) == nullptr)
      fail("{} maps tensor '{}' to {}, but that file has no such tensor", index_path.string(), tensor, file);
  }
  if (outside_index_ > 0)
    log::info("{}: {} tensors found in safetensors files outside {}", dir_.string(), outside_index_,
              kIndexName);
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::tensor_names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, t] : tensors_) out.push_back(name);
  return out;
}

size_t Checkpoint::total_bytes() const {
  size_t n = 0;
  for (const auto& [name, t] : tensors_) n += t->nbytes;
  return n;
}

std::vector<std::string> Checkpoint::files() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : files_) out.push_back(name);
  return out;
}

}  // namespace tandem::loader
