// The per-process compute context handed to every op: the CPU GEMM primitive cache and the
// pool that activation tensors are allocated from today, the CUDA stream and cuBLASLt handle
// when the CUDA backend runs. Owned by the command that runs a model; no op keeps global
// state.
#pragma once

#include "kernels/cpu/gemm.h"
#include "src/tensor/op_profile.h"
#include "src/tensor/tensor_pool.h"

namespace kdgrid {

struct Runtime {
  cpu::GemmContext gemm;
  // Activations and their gradients (reused across micro-batches and steps; counts the
  // activation memory).
  TensorPool pool;
  // Per-op wall times when set (benchmarks); null in normal runs.
  OpProfile* profile = nullptr;
};

}  // namespace kdgrid
