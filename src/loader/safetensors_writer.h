// Writes .safetensors files (and sharded checkpoints) the way Hugging Face's `safetensors` does, so tests,
// fixtures and `tandem quantize` produce files any HF tool can read.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "tensor/tensor.h"

namespace tandem::loader {

class SafetensorsWriter {
 public:
  /// Copies numel(shape) * dtype_size(dtype) bytes from `data`. A name added twice is an error.
  void add(const std::string& name, DType dtype, Shape shape, const void* data);
  /// Same, from a host tensor view.
  void add(const std::string& name, const Tensor& t) { add(name, t.dtype, t.shape, t.data); }
  /// The header's `__metadata__` (HF writes {"format": "pt"}).
  void set_metadata(std::map<std::string, std::string> metadata) { metadata_ = std::move(metadata); }

  /// Header keys sorted by name (`__metadata__` first), header padded with spaces to a multiple of 8 bytes,
  /// data contiguous. Data is laid out widest dtype first (then by name), as HF does, so every tensor starts
  /// at an offset aligned to its element size. Throws tandem::Error if the file cannot be written.
  void write(const std::filesystem::path& path) const;

  /// Names added so far, sorted.
  std::vector<std::string> names() const;
  /// Sum of the tensors' byte sizes.
  size_t data_bytes() const;

 private:
  struct Entry {
    DType dtype;
    Shape shape;
    std::vector<uint8_t> bytes;
  };
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

/// Writes each shard as `dir/<file name>` plus `dir/model.safetensors.index.json` mapping every tensor to its
/// shard (`{"metadata": {"total_size": N}, "weight_map": {...}}`). A name in two shards is an error.
void write_sharded(const std::filesystem::path& dir, const std::map<std::string, SafetensorsWriter>& shards);

}  // namespace tandem::loader
