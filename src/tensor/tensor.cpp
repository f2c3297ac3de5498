#include "src/tensor/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace kdgrid {

Buffer::Buffer(size_t bytes, Device device, bool zero) : bytes_(bytes), device_(device) {
  KDGRID_CHECK(device == Device::kCpu, "this build allocates host buffers only here");
  // 64-byte alignment for AVX-512 loads; aligned_alloc wants a multiple of the alignment.
  capacity_ = bytes ? (bytes + 63) / 64 * 64 : 64;
  data_ = std::aligned_alloc(64, capacity_);
  if (!data_) throw std::bad_alloc();
  if (zero) std::memset(data_, 0, capacity_);
}

Buffer::Buffer(void* data, size_t bytes, size_t capacity, Device device,
               std::shared_ptr<BufferRecycler> recycler)
    : data_(data),
      bytes_(bytes),
      capacity_(capacity),
      device_(device),
      recycler_(std::move(recycler)) {
  KDGRID_CHECK(data_ && capacity_ >= bytes_ && recycler_, "Buffer: bad lent memory");
}

Buffer::~Buffer() {
  if (recycler_)
    recycler_->recycle(data_, bytes_, capacity_);
  else
    std::free(data_);
}

int64_t Tensor::numel() const {
  if (shape_.empty()) return 0;
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

Tensor Tensor::zeros(std::vector<int64_t> shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  for (int64_t d : t.shape_) KDGRID_CHECK(d >= 0, "negative dimension in {}", t.describe());
  t.owner_ = std::make_shared<Buffer>(t.bytes(), device);
  t.data_ = t.owner_->data();
  return t;
}

Tensor Tensor::empty(std::vector<int64_t> shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  for (int64_t d : t.shape_) KDGRID_CHECK(d >= 0, "negative dimension in {}", t.describe());
  t.owner_ = std::make_shared<Buffer>(t.bytes(), device, /*zero=*/false);
  t.data_ = t.owner_->data();
  return t;
}

Tensor Tensor::over(std::shared_ptr<Buffer> buffer, std::vector<int64_t> shape, DType dtype) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = buffer->device();
  for (int64_t d : t.shape_) KDGRID_CHECK(d >= 0, "negative dimension in {}", t.describe());
  KDGRID_CHECK(t.bytes() <= buffer->bytes(), "{} does not fit a buffer of {} bytes", t.describe(),
               buffer->bytes());
  t.owner_ = std::move(buffer);
  t.data_ = t.owner_->data();
  return t;
}

Tensor Tensor::view(void* data, std::vector<int64_t> shape, DType dtype, Device device) {
  Tensor t;
  t.data_ = data;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = device;
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
  KDGRID_CHECK(device_ == Device::kCpu, "zero(): host tensors only here");
  std::memset(data_, 0, bytes());
}

std::string Tensor::describe() const {
  std::string s = "[";
  for (size_t i = 0; i < shape_.size(); ++i) s += (i ? ", " : "") + std::to_string(shape_[i]);
  return s + "] " + std::string(dtypeName(dtype_)) + (device_ == Device::kCpu ? " cpu" : " cuda");
}

}  // namespace kdgrid
