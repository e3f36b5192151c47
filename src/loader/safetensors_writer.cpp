#include "loader/safetensors_writer.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tandem::loader {

void SafetensorsWriter::add(const std::string& name, DType dtype, Shape shape, const void* data) {
  TANDEM_CHECK(name != "__metadata__", "tensor name __metadata__ is reserved");
  TANDEM_CHECK(!entries_.contains(name), "SafetensorsWriter: tensor '{}' added twice", name);
  for (int i = 0; i < shape.rank; ++i)
    TANDEM_CHECK(shape[i] >= 0, "SafetensorsWriter: tensor '{}' has negative dimension in {}", name,
                 shape.str());
  Entry e{dtype, shape, {}};
  e.bytes.resize(static_cast<size_t>(shape.numel()) * dtype_size(dtype));
  if (!e.bytes.empty()) std::memcpy(e.bytes.data(), data, e.bytes.size());
  entries_.emplace(name, std::move(e));
}

std::vector<std::string> SafetensorsWriter::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

size_t SafetensorsWriter::data_bytes() const {
  size_t n = 0;
  for (const auto& [name, e] : entries_) n += e.bytes.size();
  return n;
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  // Data order: widest element first so every offset stays aligned, then by name (HF `prepare`).
  std::vector<const std::pair<const std::string, Entry>*> order;
  for (const auto& kv : entries_) order.push_back(&kv);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return dtype_size(a->second.dtype) > dtype_size(b->second.dtype);
  });
  std::map<std::string, std::pair<size_t, size_t>> offsets;
  size_t pos = 0;
  for (const auto* kv : order) {
    offsets[kv->first] = {pos, pos + kv->second.bytes.size()};
    pos += kv->second.bytes.size();
  }

  // Built by hand rather than through a json object so `__metadata__` comes first as in HF files.
  std::string header = "{";
  bool first = true;
  if (!metadata_.empty()) {
    header += "\"__metadata__\":" + nlohmann::json(metadata_).dump();
    first = false;
  }
  for (const auto& [name, e] : entries_) {
    nlohmann::json shape = nlohmann::json::array();
    for (int i = 0; i < e.shape.rank; ++i) shape.push_back(e.shape[i]);
    const auto [begin, end] = offsets[name];
    const nlohmann::json entry = {
        {"dtype", std::string(dtype_name(e.dtype))}, {"shape", shape}, {"data_offsets", {begin, end}}};
    header += (first ? "" : ",") + nlohmann::json(name).dump() + ":" + entry.dump();
    first = false;
  }
  header += "}";
  header.resize((header.size() + 7) / 8 * 8, ' ');

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail("cannot create {}", path.string());
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto* kv : order)
    out.write(reinterpret_cast<const char*>(kv->second.bytes.data()),
              static_cast<std::streamsize>(kv->second.bytes.size()));
  out.close();
  if (!out) fail("error writing {}", path.string());
}

void write_sharded(const std::filesystem::path& dir, const std::map<std::string, SafetensorsWriter>& shards) {
  nlohmann::json weight_map = nlohmann::json::object();
  size_t total = 0;
  for (const auto& [file, writer] : shards) {
    for (const auto& name : writer.names()) {
      if (weight_map.contains(name))
        fail("write_sharded: tensor '{}' is in both {} and {}", name, weight_map[name].get<std::string>(),
             file);
      weight_map[name] = file;
    }
    total += writer.data_bytes();
  }
  for (const auto& [file, writer] : shards) writer.write(dir / file);
  const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const auto index_path = dir / "model.safetensors.index.json";
  std::ofstream out(index_path);
  if (!out) fail("cannot create {}", index_path.string());
  out << index.dump(2) << "\n";
  out.close();
  if (!out) fail("error writing {}", index_path.string());
}

}  // namespace tandem::loader
