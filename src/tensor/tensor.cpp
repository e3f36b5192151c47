#include "tensor/tensor.h"

#include <cstring>

namespace tandem {

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) {
    if (i) s += ", ";
    s += std::to_string(d[i]);
  }
  return s + "]";
}

Tensor Tensor::rows(int64_t begin, int64_t n) const {
  TANDEM_CHECK(rank() >= 1 && begin >= 0 && begin + n <= dim(0), "rows({}, {}) out of range for {}", begin, n,
               shape.str());
  Tensor t = *this;
  t.shape.d[0] = n;
  const size_t row_bytes = n == 0 ? 0 : t.nbytes() / static_cast<size_t>(n);
  t.data = static_cast<char*>(data) + static_cast<size_t>(begin) * (n == 0 ? 0 : row_bytes);
  if (n == 0) {
    Tensor one = *this;
    one.shape.d[0] = 1;
    t.data = static_cast<char*>(data) + static_cast<size_t>(begin) * one.nbytes();
  }
  return t;
}

Tensor Tensor::reshape(Shape s) const {
  TANDEM_CHECK(s.numel() == numel(), "reshape {} -> {} changes the element count", shape.str(), s.str());
  Tensor t = *this;
  t.shape = s;
  return t;
}

Buffer::Buffer(Allocator& allocator, DType dtype, Shape shape) : allocator_(&allocator) {
  bytes_ = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  mem_ = allocator.allocate(bytes_ == 0 ? 1 : bytes_);
  tensor_ = Tensor{mem_, shape, dtype, allocator.device()};
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    release();
    allocator_ = std::exchange(o.allocator_, nullptr);
    mem_ = std::exchange(o.mem_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    tensor_ = std::exchange(o.tensor_, Tensor{});
  }
  return *this;
}

void Buffer::release() {
  if (mem_ && allocator_) allocator_->deallocate(mem_, bytes_ == 0 ? 1 : bytes_);
  mem_ = nullptr;
}

Buffer Buffer::zeros(DType dtype, Shape shape) {
  Buffer b(dtype, shape);
  std::memset(b.mem_, 0, b.bytes_);
  return b;
}

}  // namespace tandem
