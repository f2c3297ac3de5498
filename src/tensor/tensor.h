// Tensors: a shape, a storage type and a device over a (shared) buffer. Model code works on
// Tensors; ops (src/tensor/ops.h) dispatch on device and dtype to kernels/cpu or kernels/cuda.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "src/core/check.h"
#include "src/core/dtype.h"

namespace kdgrid {

enum class Device : uint8_t { kCpu, kCuda };

// Takes back the memory of a Buffer when its last Tensor goes (TensorPool, tensor_pool.h).
class BufferRecycler {
 public:
  virtual ~BufferRecycler() = default;
  // `data` was lent for `bytes` (of `capacity`); the recycler owns it again.
  virtual void recycle(void* data, size_t bytes, size_t capacity) noexcept = 0;
};

// Owning allocation, 64-byte aligned on the host (cudaMalloc on a GPU).
class Buffer {
 public:
  // A fresh allocation, zero-filled when `zero`, else uninitialised.
  Buffer(size_t bytes, Device device, bool zero = true);
  // Memory lent by `recycler` (at least `bytes`, `capacity` in all), returned to it on
  // destruction instead of being freed.
  Buffer(void* data, size_t bytes, size_t capacity, Device device,
         std::shared_ptr<BufferRecycler> recycler);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  size_t capacity_ = 0;
  Device device_;
  std::shared_ptr<BufferRecycler> recycler_;  // null: data_ is freed
};

class Tensor {
 public:
  Tensor() = default;
  // A new zero-filled tensor.
  static Tensor zeros(std::vector<int64_t> shape, DType dtype, Device device = Device::kCpu);
  // A new tensor with uninitialised contents (for outputs that are fully overwritten; no
  // memset, and no page is touched before its first write).
  static Tensor empty(std::vector<int64_t> shape, DType dtype, Device device = Device::kCpu);
  // A tensor over `buffer` (at least the shape's bytes), sharing its ownership.
  static Tensor over(std::shared_ptr<Buffer> buffer, std::vector<int64_t> shape, DType dtype);
  // A view of memory owned elsewhere (e.g. a slice of the flat parameter buffer).
  static Tensor view(void* data, std::vector<int64_t> shape, DType dtype,
                     Device device = Device::kCpu);

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int64_t numel() const;
  size_t bytes() const { return numel() * dtypeSize(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool defined() const { return !shape_.empty(); }

  void* raw() const { return data_; }
  // Typed pointer; checks that T matches dtype().
  template <typename T>
  T* data() const {
    KDGRID_CHECK(dtypeOf<T>() == dtype_, "tensor holds {}, not {}", dtypeName(dtype_),
                 dtypeName(dtypeOf<T>()));
    return static_cast<T*>(data_);
  }
  // Rows [begin, begin + count) of dimension 0, as a view.
  Tensor rows(int64_t begin, int64_t count) const;
  Tensor reshaped(std::vector<int64_t> shape) const;
  void zero();
  std::string describe() const;  // "[8, 256, 768] bf16 cpu"

 private:
  std::shared_ptr<Buffer> owner_;
  void* data_ = nullptr;
  std::vector<int64_t> shape_;
  DType dtype_ = DType::kF32;
  Device device_ = Device::kCpu;
};

}  // namespace kdgrid
