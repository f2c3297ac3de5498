#include "src/tensor/tensor.h"

#include <cstring>

#include "kernels/cpu/cpu_backend.h"

namespace kdgrid {

Backend& hostBackend() {
  static cpu::CpuBackend backend;
  return backend;
}

Buffer::Buffer(size_t bytes, Backend& backend, bool zero) : bytes_(bytes), backend_(&backend) {
  // 64-byte alignment for AVX-512 loads.
  capacity_ = bytes ? (bytes + 63) / 64 * 64 : 64;
  data_ = backend.allocate(capacity_);
  if (zero) backend.zeroFill(data_, capacity_);
}

Buffer::Buffer(void* data, size_t bytes, size_t capacity, Backend& backend,
               std::shared_ptr<BufferRecycler> recycler)
    : data_(data),
      bytes_(bytes),
      capacity_(capacity),
      backend_(&backend),
      recycler_(std::move(recycler)) {
  KDGRID_CHECK(data_ && capacity_ >= bytes_ && recycler_, "Buffer: bad lent memory");
}

Buffer::~Buffer() {
  if (recycler_)
    recycler_->recycle(data_, bytes_, capacity_);
  else
    backend_->free(data_, capacity_);
}

int64_t Tensor::numel() const {
  if (shape_.empty()) return 0;
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

Tensor Tensor::zeros(std::vector<int64_t> shape, DType dtype, Backend& backend) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.backend_ = &backend;
  for (int64_t d : t.shape_) KDGRID_CHECK(d >= 0, "negative dimension in {}", t.describe());
  t.owner_ = std::make_shared<Buffer>(t.bytes(), backend);
  t.data_ = t.owner_->data();
  return t;
}

Tensor Tensor::empty(std::vector<int64_t> shape, DType dtype, Backend& backend) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.backend_ = &backend;
  for (int64_t d : t.shape_) KDGRID_CHECK(d >= 0, "negative dimension in {}", t.describe());
  t.owner_ = std::make_shared<Buffer>(t.bytes(), backend, /*zero=*/false);
  t.data_ = t.owner_->data();
  return t;
}

Tensor Tensor::over(std::shared_ptr<Buffer> buffer, std::vector<int64_t> shape, DType dtype) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.backend_ = &buffer->backend();
  for (int64_t d : t.shape_) KDGRID_CHECK(d >= 0, "negative dimension in {}", t.describe());
  KDGRID_CHECK(t.bytes() <= buffer->bytes(), "{} does not fit a buffer of {} bytes", t.describe(),
               buffer->bytes());
  t.owner_ = std::move(buffer);
  t.data_ = t.owner_->data();
  return t;
}

Tensor Tensor::view(void* data, std::vector<int64_t> shape, DType dtype, Backend& backend) {
  Tensor t;
  t.data_ = data;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.backend_ = &backend;
  return t;
}

Tensor Tensor::rows(int64_t begin, int64_t count) const {
  KDGRID_CHECK(!shape_.empty() && begin >= 0 && begin + count <= shape_[0],
               "rows [{}, {}) out of {}", begin, begin + count, describe());
  Tensor t = *this;
  t.shape_[0] = count;
  t.data_ = static_cast<char*>(data_) + begin * (numel() / shape_[0]) * dtypeSize(dtype_);
  return t;
}

Tensor Tensor::reshaped(std::vector<int64_t> shape) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  KDGRID_CHECK(t.numel() == numel(), "cannot reshape {} to {}", describe(), t.describe());
  return t;
}

void Tensor::zero() {
  backend_->zeroFill(data_, bytes());
}

std::string Tensor::describe() const {
  std::string s = "[";
  for (size_t i = 0; i < shape_.size(); ++i) s += (i ? ", " : "") + std::to_string(shape_[i]);
  return s + "] " + std::string(dtypeName(dtype_)) + " " + backend_->name();
}

}  // namespace kdgrid
