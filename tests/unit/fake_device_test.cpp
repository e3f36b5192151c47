// The fake-device backend: its memory is unreadable from the host (so CI catches host reads of device data),
// and its ops give the CPU backend's bits.
#include "ops/fake_device/fake_device_backend.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "ops/backends.h"

namespace tandem::ops {
namespace {

TEST(FakeDevice, MemoryIsDeviceOnly) {
  auto be = make_backend("fake", 1);
  EXPECT_EQ(be->device().kind, DeviceKind::kFake);
  Buffer b = be->alloc(DType::kF32, {4, 8});
  EXPECT_TRUE(is_fake_device_pointer(b.view().data));
  EXPECT_EQ(b.view().device.kind, DeviceKind::kFake);
  Arena arena(be->allocator());
  EXPECT_TRUE(is_fake_device_pointer(arena.alloc(DType::kI32, {3}).data));
}

TEST(FakeDeviceDeathTest, HostReadOfDeviceMemoryFaults) {
  auto be = make_backend("fake", 1);
  Buffer b = be->alloc(DType::kF32, {16});
  // What `fwd.logits.ptr<float>()[0]` in host code does: it must fail loudly, not read stale bytes.
  EXPECT_DEATH(
      {
        volatile float x = b.ptr<float>()[0];
        (void)x;
      },
      "");
}

TEST(FakeDevice, UploadOpsDownloadRoundTripMatchesTheCpuBackend) {
  auto fake = make_backend("fake", 2);
  auto cpu = make_backend("cpu", 2);
  const int64_t R = 3, V = 37;
  std::vector<float> logits(R * V);
  for (int64_t i = 0; i < R * V; ++i) logits[i] = static_cast<float>((i * 7919) % 101) * 0.25f - 3.0f;
  std::vector<int32_t> want(R), got(R);
  for (Backend* be : {cpu.get(), fake.get()}) {
    Arena arena(be->allocator());
    const Tensor l = arena.alloc(DType::kF32, {R, V});
    const Tensor ids = arena.alloc(DType::kI32, {R});
    be->upload(logits.data(), l);
    be->argmax_rows(l, ids);
    // gather the rows in reverse, then argmax again: data movement and a reduction on "device" memory
    const std::vector<int32_t> order = {2, 1, 0};
    const Tensor rows = arena.alloc(DType::kI32, {R});
    be->upload(order.data(), rows);
    const Tensor g = arena.alloc(DType::kF32, {R, V});
    be->gather_rows(l, rows, g);
    const Tensor ids2 = arena.alloc(DType::kI32, {R});
    be->argmax_rows(g, ids2);
    std::vector<int32_t> a(R), b(R);
    be->to_host(ids, a.data());
    be->to_host(ids2, b.data());
    EXPECT_EQ(a[0], b[2]);
    EXPECT_EQ(a[2], b[0]);
    (be == cpu.get() ? want : got) = a;
  }
  EXPECT_EQ(want, got);
  for (int64_t r = 0; r < R; ++r)
    EXPECT_EQ(want[r], std::max_element(logits.begin() + r * V, logits.begin() + (r + 1) * V) - (logits.begin() + r * V));
}

TEST(FakeDevice, UnknownDeviceNamesTheKnownOnes) {
  try {
    (void)make_backend("tpu", 1);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cpu, fake"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tandem::ops
