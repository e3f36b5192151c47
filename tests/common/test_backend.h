// The backend the model, spec and engine tests run on. CTest registers those tests on the CPU backend, again
// with TANDEM_TEST_BACKEND=fake on the fake-device backend (whose memory host code cannot read, so a host read
// of device data fails in CI), and in CUDA builds with TANDEM_TEST_BACKEND=cuda. On a machine without a GPU
// the cuda registrations skip with a one-line reason (a GPU is not a CI prerequisite); every other missing
// prerequisite still fails under CI=true. (An environment variable read by tests only; the product takes
// --device.)
#pragma once

#include <gtest/gtest.h>

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

/// Skips every test of the binary when the test backend cannot run here (a cuda registration without a GPU).
class TestBackendEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    std::string why;
    if (!ops::backend_available(test_device(), &why)) GTEST_SKIP() << "backend " << test_device() << ": " << why;
  }
};

inline ::testing::Environment* const kTestBackendEnvironment =
    ::testing::AddGlobalTestEnvironment(new TestBackendEnvironment);

}  // namespace tandem::test
