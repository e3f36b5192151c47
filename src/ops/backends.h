// Choosing a backend by name (--device). Every backend compiled into this build is listed here.
#pragma once

#include <memory>
#include <string_view>

#include "ops/ops.h"

namespace tandem::ops {

/// "cpu" (default), "fake" (the CI fake-device backend). n_threads == 0: all hardware threads. Unknown names
/// throw tandem::Error listing the known ones.
std::unique_ptr<Backend> make_backend(std::string_view device, int n_threads = 0);

}  // namespace tandem::ops
