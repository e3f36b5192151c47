// Test helpers: locating committed fixtures and reading their reference tensors.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "loader/safetensors.h"

namespace tandem::test {

inline std::filesystem::path source_dir() { return TANDEM_SOURCE_DIR; }
inline std::filesystem::path fixture_model(const std::string& name) {
  return source_dir() / "tests" / "fixtures" / "models" / name;
}

/// reference/reference.safetensors of a model fixture (tools/make_fixtures.py, from transformers). It sits in a
/// subfolder so the checkpoint loader, which scans the folder for unindexed shards, never sees it.
class Reference {
 public:
  explicit Reference(const std::filesystem::path& dir)
      : file_(loader::SafetensorsFile::open(dir / "reference" / "reference.safetensors")) {}
  const loader::TensorInfo& info(const std::string& name) const {
    for (const auto& t : file_->tensors())
      if (t.name == name) return t;
    throw std::runtime_error("reference tensor missing: " + name);
  }
  bool has(const std::string& name) const {
    for (const auto& t : file_->tensors())
      if (t.name == name) return true;
    return false;
  }
  std::vector<int32_t> ints(const std::string& name) const {
    const auto& t = info(name);
    const auto* p = static_cast<const int32_t*>(t.data);
    return std::vector<int32_t>(p, p + t.shape.numel());
  }
  std::vector<float> floats(const std::string& name) const {
    const auto& t = info(name);
    const auto* p = static_cast<const float*>(t.data);
    return std::vector<float>(p, p + t.shape.numel());
  }
  Shape shape(const std::string& name) const { return info(name).shape; }

 private:
  std::unique_ptr<loader::SafetensorsFile> file_;
};

inline float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0.0f;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace tandem::test
