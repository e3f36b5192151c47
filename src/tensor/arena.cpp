#include "tensor/arena.h"

#include "core/error.h"

namespace tandem {

namespace {
size_t round_up(size_t n) { return (n + Allocator::kAlignment - 1) / Allocator::kAlignment * Allocator::kAlignment; }
}  // namespace

Arena::Arena(Allocator& allocator, size_t initial_bytes) : allocator_(allocator) {
  if (initial_bytes > 0) {
    capacity_ = round_up(initial_bytes);
    main_ = {allocator_.allocate(capacity_), capacity_};
  }
}

Arena::~Arena() {
  for (const Chunk& c : overflow_) allocator_.deallocate(c.p, c.bytes);
  if (main_.p) allocator_.deallocate(main_.p, main_.bytes);
}

Tensor Arena::alloc(DType dtype, Shape shape) {
  TANDEM_CHECK(shape.numel() >= 0, "arena: negative shape {}", shape.str());
  const size_t bytes = round_up(static_cast<size_t>(shape.numel()) * dtype_size(dtype));
  step_bytes_ += bytes;
  if (step_bytes_ > high_water_) high_water_ = step_bytes_;
  void* p = nullptr;
  if (overflow_.empty() && used_ + bytes <= capacity_) {
    p = static_cast<char*>(main_.p) + used_;
    used_ += bytes;
  } else {
    used_ = capacity_;  // once overflowing, later tensors of this step come from overflow chunks too
    overflow_.push_back({allocator_.allocate(bytes == 0 ? Allocator::kAlignment : bytes),
                         bytes == 0 ? Allocator::kAlignment : bytes});
    p = overflow_.back().p;
  }
  return Tensor{p, shape, dtype, allocator_.device()};
}

void Arena::reset() {
  if (!overflow_.empty()) {
    for (const Chunk& c : overflow_) allocator_.deallocate(c.p, c.bytes);
    overflow_.clear();
    if (main_.p) allocator_.deallocate(main_.p, main_.bytes);
    capacity_ = round_up(high_water_);
    main_ = {allocator_.allocate(capacity_), capacity_};
  }
  used_ = 0;
  step_bytes_ = 0;
}

}  // namespace tandem
