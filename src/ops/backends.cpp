#include "ops/backends.h"

#include "ops/fake_device/fake_device_backend.h"

namespace tandem::ops {

std::unique_ptr<Backend> make_backend(std::string_view device, int n_threads) {
  if (device == "cpu") return make_cpu_backend(n_threads);
  if (device == "fake") return make_fake_device_backend(n_threads);
  fail("unknown --device '{}' (this build has: cpu, fake)", device);
}

}  // namespace tandem::ops
