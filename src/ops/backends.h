// Choosing a backend by name (--device). Every backend compiled into this build is listed here.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ops/ops.h"

namespace tandem::ops {

/// "auto" (GPU 0 when a CUDA device is usable, else the CPU), "cpu", "fake" (the CI fake-device backend),
/// "cuda" / "cuda:N" (GPU N; builds with TANDEM_CUDA). n_threads == 0: all hardware threads (CPU backends).
/// Unknown names throw tandem::Error listing the known ones.
std::unique_ptr<Backend> make_backend(std::string_view device, int n_threads = 0);

/// The backends compiled into this build: "cpu", "fake", and "cuda" when built with TANDEM_CUDA.
std::vector<std::string> compiled_backends();

/// Whether make_backend(device) can run on this machine. When it cannot, *why (if given) gets a one-line
/// reason ("this build has no CUDA backend", "no CUDA device: ...").
bool backend_available(std::string_view device, std::string* why = nullptr);

}  // namespace tandem::ops
