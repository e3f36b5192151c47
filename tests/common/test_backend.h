// The backend the model, spec and engine tests run on. CTest registers those tests twice: on the CPU backend
// and, with TANDEM_TEST_BACKEND=fake, on the fake-device backend, whose memory host code cannot read, so a host
// read of device data fails in CI. (An environment variable read by tests only; the product takes --device.)
#pragma once

#include <cstdlib>
#include <memory>
#include <string>

#include "ops/backends.h"

namespace tandem::test {

inline std::string test_device() {
  const char* d = std::getenv("TANDEM_TEST_BACKEND");
  return d && *d ? d : "cpu";
}

inline std::unique_ptr<ops::Backend> make_test_backend(int n_threads) {
  return ops::make_backend(test_device(), n_threads);
}

}  // namespace tandem::test
