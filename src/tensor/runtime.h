// The per-process compute context handed to every op: the CPU GEMM primitive cache today,
// the CUDA stream and cuBLASLt handle when the CUDA backend runs. Owned by the command that
// runs a model; no op keeps global state.
#pragma once

#include "kernels/cpu/gemm.h"

namespace kdgrid {

struct Runtime {
  cpu::GemmContext gemm;
};

}  // namespace kdgrid
