// Host <-> backend data movement: the only way host code (checkpoints, ZeRO, the loss and
// norm reductions, evaluation, sampling, logging, MPI on backends whose memory the host cannot
// address) reads or writes a tensor's elements. On the CPU backend these are plain copies.
#pragma once

#include <span>
#include <vector>

#include "src/tensor/tensor.h"

namespace kdgrid {

// t's bytes -> host[0, t.bytes()).
void copyToHost(const Tensor& t, void* host);
// host[0, t.bytes()) -> t.
void copyFromHost(Tensor& t, const void* host);
// dst = src (same backend, same byte size).
void copyTensor(Tensor& dst, const Tensor& src);

// t's elements as a host vector (T must match t.dtype()).
template <typename T>
std::vector<T> toHost(const Tensor& t) {
  KDGRID_CHECK(dtypeOf<T>() == t.dtype(), "toHost: {} is not {}", t.describe(),
               dtypeName(dtypeOf<T>()));
  std::vector<T> out(t.numel());
  copyToHost(t, out.data());
  return out;
}

// A host view of a tensor for host code that reads or writes it whole (MPI, HDF5): the
// tensor's own memory when its backend lets the host address it (no copy on the CPU), else a
// staged host copy, filled from the tensor when `load`, written back by store().
class HostView {
 public:
  HostView(const Tensor& t, bool load);
  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  // The host copy back into t (nothing to do without staging).
  void store(Tensor& t) const;

 private:
  void* data_;
  std::vector<char> staging_;
};

// A new tensor of `backend` holding `values`, shaped `shape` (numel == values.size()).
template <typename T>
Tensor fromHost(std::span<const T> values, std::vector<int64_t> shape, Backend& backend) {
  Tensor t = Tensor::empty(std::move(shape), dtypeOf<T>(), backend);
  KDGRID_CHECK(static_cast<size_t>(t.numel()) == values.size(), "fromHost: {} values for {}",
               values.size(), t.describe());
  copyFromHost(t, values.data());
  return t;
}

}  // namespace kdgrid
