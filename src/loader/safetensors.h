// One memory-mapped .safetensors file: an 8-byte little-endian header length, a JSON header naming every
// tensor's dtype, shape and byte range, then the raw data. Everything in the header is validated before any
// tensor is exposed, so a truncated or corrupt file is a tandem::Error naming the file and tensor, never a
// crash or an out-of-bounds read (the format is https://github.com/huggingface/safetensors#format).
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "tensor/tensor.h"

namespace tandem::loader {

/// One tensor of a mapped file. `data` stays valid as long as the SafetensorsFile (or Checkpoint) lives.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;                 // rank 0..4; rank 0 is a scalar (numel 1)
  std::string file;            // file name relative to the checkpoint dir
  const void* data = nullptr;  // into the read-only mmap; not necessarily aligned to the dtype
  size_t nbytes = 0;

  /// Zero-copy view over the mapped bytes. The mapping is read-only: writing through it faults.
  Tensor view() const;
};

class SafetensorsFile {
 public:
  /// Maps and validates `path`. Throws tandem::Error naming the file (and tensor) on any malformation:
  /// short file, absurd or out-of-range header length, invalid JSON, missing or mistyped fields, unsupported
  /// dtype, rank > 4, byte ranges out of bounds / reversed / of the wrong size / overlapping.
  static std::unique_ptr<SafetensorsFile> open(const std::filesystem::path& path);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  /// Sorted by name.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  /// The header's `__metadata__` (string -> string); empty if absent.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// nullptr if the file has no tensor of that name.
  const TensorInfo* find(std::string_view name) const;
  const std::filesystem::path& path() const { return path_; }
  /// Size of the whole file in bytes.
  size_t file_size() const { return size_; }

  /// Largest header accepted; real headers are a few MB at most.
  static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

 private:
  SafetensorsFile() = default;
  void parse();

  std::filesystem::path path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace tandem::loader
