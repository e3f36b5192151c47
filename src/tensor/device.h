// Where memory lives. Code that reads a tensor's bytes must run on its device's side: host code may
// dereference only kHost memory; kFake ("device" memory of the CI fake-device backend) and kCuda memory are
// reached through a Backend.
#pragma once

#include <cstdint>

namespace tandem {

enum class DeviceKind : uint8_t { kHost, kFake, kCuda };

struct Device {
  DeviceKind kind = DeviceKind::kHost;
  int index = 0;  // which GPU (0 for the host)

  bool is_host() const { return kind == DeviceKind::kHost; }
  bool operator==(const Device&) const = default;
  static constexpr Device host() { return Device{}; }
};

const char* device_kind_name(DeviceKind kind);  // "host", "fake", "cuda"

}  // namespace tandem
