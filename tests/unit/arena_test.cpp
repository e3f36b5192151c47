// The per-step arena: same addresses for the same sequence of allocations (graph capture needs it), growth
// to the high-water mark after a step that overflows, alignment.
#include "tensor/arena.h"

#include <gtest/gtest.h>

#include <vector>

namespace tandem {
namespace {

std::vector<void*> one_step(Arena& a) {
  std::vector<void*> ptrs;
  for (int64_t n : {100, 7, 4096, 1})
    ptrs.push_back(a.alloc(DType::kF32, {n}).data);
  return ptrs;
}

TEST(Arena, SameShapesGetSameAddressesOnceGrown) {
  Arena a(host_allocator());  // starts empty: the first step overflows
  (void)one_step(a);
  const size_t hw = a.high_water();
  a.reset();
  EXPECT_GE(a.capacity(), hw);
  const auto first = one_step(a);
  a.reset();
  const auto second = one_step(a);
  EXPECT_EQ(first, second);
  EXPECT_EQ(a.capacity(), hw) << "no growth once the step fits";
}

TEST(Arena, AllocationsAreAlignedAndDisjoint) {
  Arena a(host_allocator(), 1 << 16);
  const Tensor x = a.alloc(DType::kBF16, {3});
  const Tensor y = a.alloc(DType::kF32, {5});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(x.data) % Allocator::kAlignment, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(y.data) % Allocator::kAlignment, 0u);
  EXPECT_GE(static_cast<char*>(y.data) - static_cast<char*>(x.data), static_cast<std::ptrdiff_t>(x.nbytes()));
  EXPECT_EQ(x.device, Device::host());
}

TEST(Arena, OverflowKeepsEarlierTensorsValid) {
  Arena a(host_allocator(), 1024);
  const Tensor small = a.alloc(DType::kF32, {16});
  small.ptr<float>()[0] = 42.0f;
  const Tensor big = a.alloc(DType::kF32, {100000});  // does not fit: an overflow chunk
  big.ptr<float>()[99999] = 1.0f;
  EXPECT_EQ(small.ptr<float>()[0], 42.0f);
  a.reset();
  EXPECT_GE(a.capacity(), 100000u * 4);
}

TEST(Buffer, ZerosFillsAndMoveTransfersOwnership) {
  Buffer z = Buffer::zeros(DType::kF32, {64});
  for (int i = 0; i < 64; ++i) EXPECT_EQ(z.ptr<float>()[i], 0.0f);
  Buffer moved = std::move(z);
  EXPECT_TRUE(z.empty());
  EXPECT_FALSE(moved.empty());
}

}  // namespace
}  // namespace tandem
