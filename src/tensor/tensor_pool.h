// A cache of a backend's buffers for tensors whose shapes repeat: a training step allocates the
// same activations and activation gradients every micro-batch, so handing freed buffers back
// out saves the allocator's work and the page faults of fresh memory (glibc returns large
// blocks to the kernel on free). Buffers come back to the pool when their last Tensor goes.
//
// It also counts the bytes of its tensors that are alive (and their high-water mark): the
// activation memory of a step, which the recompute modes trade against compute.
//
// Sizes are rounded up to classes (8 per power of two, so at most 12.5% slack) and a freed
// buffer is reused only for the same class. Cached (free) buffers are kept up to the
// high-water mark of live bytes; beyond that they are freed, so a run whose shapes change
// (generation with a growing context) holds at most twice its peak.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "src/tensor/tensor.h"

namespace kdgrid {

class TensorPool {
 public:
  explicit TensorPool(Backend& backend = hostBackend());
  ~TensorPool();
  TensorPool(const TensorPool&) = delete;
  TensorPool& operator=(const TensorPool&) = delete;

  // Tensors of the backend's memory: uninitialised (every element will be written before it is
  // read) or zeroed.
  Tensor empty(std::vector<int64_t> shape, DType dtype);
  Tensor zeros(std::vector<int64_t> shape, DType dtype);

  // Bytes of this pool's tensors alive now (their shapes' sizes, without rounding), the most
  // since construction or resetPeak(), and bytes held in free buffers.
  size_t liveBytes() const;
  size_t peakBytes() const;
  void resetPeak();
  size_t cachedBytes() const;
  // Frees every cached buffer (tensors alive keep theirs).
  void trim();

  struct State;  // tensor_pool.cpp; outlives the pool while any of its buffers is alive

 private:
  std::shared_ptr<State> state_;
};

}  // namespace kdgrid
