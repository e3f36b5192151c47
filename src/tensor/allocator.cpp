#include "tensor/allocator.h"

#include <cstdlib>

#include "core/error.h"

namespace tandem {

namespace {

class HostAllocator final : public Allocator {
 public:
  Device device() const override { return Device::host(); }
  void* allocate(size_t bytes) override {
    const size_t n = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, n == 0 ? kAlignment : n);
    if (p == nullptr) fail("out of host memory allocating {} bytes", n);
    return p;
  }
  void deallocate(void* p, size_t) override { std::free(p); }
};

}  // namespace

Allocator& host_allocator() {
  static HostAllocator a;
  return a;
}

const char* device_kind_name(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::kHost: return "host";
    case DeviceKind::kFake: return "fake";
    case DeviceKind::kCuda: return "cuda";
  }
  return "?";
}

}  // namespace tandem
