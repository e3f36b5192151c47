// A unique temporary folder removed at scope exit, and helpers to derive modified checkpoints from fixtures.
#pragma once

#include <filesystem>
#include <functional>
#include <random>
#include <string>

#include "loader/safetensors.h"
#include "loader/safetensors_writer.h"

namespace tandem::test {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("tandem-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Copies every file of checkpoint `src` into `dst` (top level only); each .safetensors file is rewritten
/// through `edit(name, info, writer)`, which adds (possibly modified) tensors to `writer` or drops them.
inline void copy_checkpoint(
    const std::filesystem::path& src, const std::filesystem::path& dst,
    const std::function<void(const loader::TensorInfo&, loader::SafetensorsWriter&)>& edit) {
  for (const auto& e : std::filesystem::directory_iterator(src)) {
    if (!e.is_regular_file()) continue;
    const auto target = dst / e.path().filename();
    if (e.path().extension() != ".safetensors") {
      std::filesystem::copy_file(e.path(), target);
      continue;
    }
    auto f = loader::SafetensorsFile::open(e.path());
    loader::SafetensorsWriter w;
    for (const auto& t : f->tensors()) edit(t, w);
    w.write(target);
  }
}

}  // namespace tandem::test
