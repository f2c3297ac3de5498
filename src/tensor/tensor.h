// Tensors: a shape, a storage type and a backend over a (shared) buffer of the backend's
// memory. Model code works on Tensors; ops (src/tensor/ops.h) dispatch on the backend and the
// dtype to its kernels. Host code reads or writes a tensor's elements only through the staging
// calls of src/tensor/staging.h (a backend's memory need not be addressable by the host).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "src/core/check.h"
#include "src/core/dtype.h"

namespace kdgrid {

// Takes back the memory of a Buffer when its last Tensor goes (TensorPool, tensor_pool.h).
class BufferRecycler {
 public:
  virtual ~BufferRecycler() = default;
  // `data` was lent for `bytes` (of `capacity`); the recycler owns it again.
  virtual void recycle(void* data, size_t bytes, size_t capacity) noexcept = 0;
};

// The process's CPU backend: where tensors live unless a Runtime's backend says otherwise.
Backend& hostBackend();

// Owning allocation of a backend's memory (64-byte aligned).
class Buffer {
 public:
  // A fresh allocation, zero-filled when `zero`, else uninitialised.
  Buffer(size_t bytes, Backend& backend, bool zero = true);
  // Memory lent by `recycler` (at least `bytes`, `capacity` in all), returned to it on
  // destruction instead of being freed.
  Buffer(void* data, size_t bytes, size_t capacity, Backend& backend,
         std::shared_ptr<BufferRecycler> recycler);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Backend& backend() const { return *backend_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  size_t capacity_ = 0;
  Backend* backend_;
  std::shared_ptr<BufferRecycler> recycler_;  // null: data_ is freed
};

class Tensor {
 public:
  Tensor() = default;
  // A new zero-filled tensor.
  static Tensor zeros(std::vector<int64_t> shape, DType dtype, Backend& backend = hostBackend());
  // A new tensor with uninitialised contents (for outputs that are fully overwritten; no
  // memset, and no page is touched before its first write).
  static Tensor empty(std::vector<int64_t> shape, DType dtype, Backend& backend = hostBackend());
  // A tensor over `buffer` (at least the shape's bytes), sharing its ownership.
  static Tensor over(std::shared_ptr<Buffer> buffer, std::vector<int64_t> shape, DType dtype);
  // A view of memory owned elsewhere (e.g. a slice of the flat parameter buffer).
  static Tensor view(void* data, std::vector<int64_t> shape, DType dtype,
                     Backend& backend = hostBackend());

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int64_t numel() const;
  size_t bytes() const { return numel() * dtypeSize(dtype_); }
  DType dtype() const { return dtype_; }
  Backend& backend() const { return *backend_; }
  bool defined() const { return !shape_.empty(); }

  // The device address (host code may dereference it only on a hostAccessible() backend).
  void* raw() const { return data_; }
  // Typed device address; checks that T matches dtype().
  template <typename T>
  T* data() const {
    KDGRID_CHECK(dtypeOf<T>() == dtype_, "tensor holds {}, not {}", dtypeName(dtype_),
                 dtypeName(dtypeOf<T>()));
    return static_cast<T*>(data_);
  }
  // Rows [begin, begin + count) of dimension 0, as a view.
  Tensor rows(int64_t begin, int64_t count) const;
  Tensor reshaped(std::vector<int64_t> shape) const;
  void zero();                   // through the backend
  std::string describe() const;  // "[8, 256, 768] bf16 cpu"

 private:
  std::shared_ptr<Buffer> owner_;
  void* data_ = nullptr;
  std::vector<int64_t> shape_;
  DType dtype_ = DType::kF32;
  Backend* backend_ = &hostBackend();
};

}  // namespace kdgrid
