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

Buffer::Buffer(DType dtype, Shape shape) {
  size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  size_t alloc = (bytes + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  void* p = std::aligned_alloc(64, alloc);
  TANDEM_CHECK(p != nullptr, "out of memory allocating {} bytes", alloc);
  std::memset(p, 0, alloc);
  mem_.reset(p);
  tensor_ = Tensor{p, shape, dtype, Device::kCPU};
}

}  // namespace tandem
