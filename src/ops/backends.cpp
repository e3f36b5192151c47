#include "ops/backends.h"

#include <charconv>

#include "core/log.h"

#include "ops/fake_device/fake_device_backend.h"
#ifdef TANDEM_HAVE_CUDA
#include "ops/cuda/cuda_backend.h"
#endif

namespace tandem::ops {

namespace {

/// "cuda" -> 0, "cuda:N" -> N; -1 for any other name.
int cuda_index(std::string_view device) {
  if (device == "cuda") return 0;
  if (device.substr(0, 5) != "cuda:") return -1;
  int n = -1;
  const auto digits = device.substr(5);
  const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  return r.ec == std::errc() && r.ptr == digits.data() + digits.size() && n >= 0 ? n : -1;
}

}  // namespace

std::vector<std::string> compiled_backends() {
#ifdef TANDEM_HAVE_CUDA
  return {"cpu", "fake", "cuda"};
#else
  return {"cpu", "fake"};
#endif
}

bool backend_available(std::string_view device, std::string* why) {
  if (device == "cpu" || device == "fake" || device == "auto") return true;
  const int index = cuda_index(device);
  if (index < 0) {
    if (why) *why = fmt::format("unknown device '{}'", device);
    return false;
  }
#ifdef TANDEM_HAVE_CUDA
  std::string reason;
  const int n = cuda_device_count(&reason);
  if (index < n) return true;
  if (why) *why = n == 0 ? reason : fmt::format("no CUDA device {} (this machine has {})", index, n);
  return false;
#else
  if (why) *why = "this build has no CUDA backend (configure with -DTANDEM_CUDA=ON and the CUDA toolkit)";
  return false;
#endif
}

namespace {

/// The backend "auto" stands for on this machine ("cuda:0" or "cpu", logged with the reason); any other name
/// as given.
std::string resolve_device(std::string_view device) {
  if (device != "auto") return std::string(device);
  std::string why;
  if (backend_available("cuda", &why)) {
    log::info("--device auto: GPU 0 (cuda:0)");
    return "cuda:0";
  }
  log::info("--device auto: the CPU ({})", why);
  return "cpu";
}

}  // namespace

std::unique_ptr<Backend> make_backend(std::string_view requested, int n_threads) {
  const std::string device = resolve_device(requested);
  if (device == "cpu") return make_cpu_backend(n_threads);
  if (device == "fake") return make_fake_device_backend(n_threads);
  const int index = cuda_index(device);
#ifdef TANDEM_HAVE_CUDA
  if (index >= 0) return make_cuda_backend(index, n_threads);
  fail("unknown --device '{}' (this build has: cpu, fake, cuda, cuda:N)", device);
#else
  if (index >= 0) fail("--device {}: this build has no CUDA backend (configure with -DTANDEM_CUDA=ON)", device);
  fail("unknown --device '{}' (this build has: cpu, fake)", device);
#endif
}

}  // namespace tandem::ops
