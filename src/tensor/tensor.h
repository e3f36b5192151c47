// Non-owning, row-major, contiguous tensor view plus an owning host buffer.
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "core/error.h"

namespace tandem {

enum class Device : uint8_t { kCPU, kCUDA };

struct Shape {
  static constexpr int kMaxDims = 4;
  std::array<int64_t, kMaxDims> d{};
  int rank = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) {
    TANDEM_CHECK(dims.size() <= kMaxDims, "tensor rank {} > {}", dims.size(), kMaxDims);
    for (int64_t v : dims) d[rank++] = v;
  }
  int64_t operator[](int i) const { return d[i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= d[i];
    return n;
  }
  bool operator==(const Shape& o) const {
    if (rank != o.rank) return false;
    for (int i = 0; i < rank; ++i)
      if (d[i] != o.d[i]) return false;
    return true;
  }
  std::string str() const;  // "[a, b, c]"
};

struct Tensor {
  void* data = nullptr;
  Shape shape;
  DType dtype = DType::kF32;
  Device device = Device::kCPU;

  bool empty() const { return data == nullptr; }
  int64_t numel() const { return shape.numel(); }
  /// Bytes of the data; 0 for an empty (data-less) tensor.
  size_t nbytes() const { return data ? static_cast<size_t>(numel()) * dtype_size(dtype) : 0; }
  int64_t dim(int i) const { return shape[i]; }
  int rank() const { return shape.rank; }
  template <typename T>
  T* ptr() const {
    return static_cast<T*>(data);
  }
  /// Rows [begin, begin + n) of the leading dimension, as a view.
  Tensor rows(int64_t begin, int64_t n) const;
  /// Same data, new shape with the same element count.
  Tensor reshape(Shape s) const;
};

/// Owning, 64-byte aligned host memory, zero-initialised.
class Buffer {
 public:
  Buffer() = default;
  Buffer(DType dtype, Shape shape);
  Tensor view() const { return tensor_; }
  const Tensor& tensor() const { return tensor_; }
  template <typename T>
  T* ptr() const {
    return tensor_.ptr<T>();
  }
  bool empty() const { return tensor_.empty(); }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> mem_;
  Tensor tensor_;
};

}  // namespace tandem
