// Non-owning, row-major, contiguous tensor view plus an owning buffer from an Allocator.
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <initializer_list>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "core/error.h"
#include "tensor/allocator.h"
#include "tensor/device.h"

namespace tandem {

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
  Device device{};  // where data lives; host code dereferences only host tensors

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

/// Owning memory from an allocator (host by default), aligned to Allocator::kAlignment, NOT initialised.
class Buffer {
 public:
  Buffer() = default;
  Buffer(DType dtype, Shape shape) : Buffer(host_allocator(), dtype, shape) {}
  Buffer(Allocator& allocator, DType dtype, Shape shape);
  ~Buffer() { release(); }
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  /// A host buffer filled with zeros.
  static Buffer zeros(DType dtype, Shape shape);

  Tensor view() const { return tensor_; }
  const Tensor& tensor() const { return tensor_; }
  template <typename T>
  T* ptr() const {
    return tensor_.ptr<T>();
  }
  bool empty() const { return tensor_.empty(); }

 private:
  void release();
  Allocator* allocator_ = nullptr;
  void* mem_ = nullptr;
  size_t bytes_ = 0;
  Tensor tensor_;
};

}  // namespace tandem
