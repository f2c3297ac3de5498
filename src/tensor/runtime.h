// The per-process compute context handed to every op: the backend (its memory, staging
// copies, GEMM handle; kernels/backend.h), the pool activation tensors come from, and the
// per-op profile. Owned by the command that runs a model; no op keeps global state.
#pragma once

#include "kernels/backend.h"
#include "src/tensor/op_profile.h"
#include "src/tensor/tensor.h"
#include "src/tensor/tensor_pool.h"

namespace kdgrid {

struct Runtime {
  explicit Runtime(Backend& b = hostBackend()) : backend(b), pool(b) {}
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  Backend& backend;
  // Activations and their gradients (reused across micro-batches and steps; counts the
  // activation memory).
  TensorPool pool;
  // Per-op wall times when set (benchmarks); null in normal runs.
  OpProfile* profile = nullptr;

  // A tensor of this runtime's backend that outlives the pool's reuse (parameters, optimizer
  // state, caches): zero-filled.
  Tensor zeros(std::vector<int64_t> shape, DType dtype) const {
    return Tensor::zeros(std::move(shape), dtype, backend);
  }
};

}  // namespace kdgrid
