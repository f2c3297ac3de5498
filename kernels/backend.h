// A compute backend: where tensor memory lives, how data crosses between it and the host,
// and the handles its kernels need (kernels/cpu's GEMM context today; a CUDA stream and a
// cuBLASLt handle for kernels/cuda). src/tensor/runtime.h holds one per process and the op
// dispatch (src/tensor/ops.cpp) is the only code that turns a tensor into a pointer a kernel
// may touch. Model, training and distillation code never name a backend.
//
// Adding a backend: a folder kernels/NAME/ with a Backend subclass and its kernels, and one
// registerBackend() call where the binary starts (src/tensor/backends.h).
#pragma once

#include <cstddef>
#include <string>

namespace kdgrid {

namespace cpu {
class GemmContext;
}

// Which kernels run on a backend's memory: the host's (kernels/cpu, through hostAddress()),
// or a device's own.
enum class KernelFamily { kHost };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;  // "cpu", "guarded", ...
  virtual KernelFamily kernels() const = 0;

  // Device memory: `bytes` > 0, 64-byte aligned, contents undefined. free() takes back exactly
  // what allocate() gave.
  virtual void* allocate(size_t bytes) = 0;
  virtual void free(void* device, size_t bytes) noexcept = 0;

  // kHost families: the address host kernels use for device address `device` (the identity
  // on the CPU). Only the op dispatch and the staging copies below call it.
  virtual void* hostAddress(const void* device) const = 0;
  // Whether host code that is not a kernel (MPI, HDF5, loops in the engine) may use device
  // pointers directly. When false, data crosses only through the staging calls.
  virtual bool hostAccessible() const = 0;

  // Staging: device <-> host copies, and device-side copies and zero fills. Ordered after
  // every op issued before them on this backend.
  virtual void copyToHost(void* host, const void* device, size_t bytes);
  virtual void copyFromHost(void* device, const void* host, size_t bytes);
  virtual void copyOnDevice(void* dst, const void* src, size_t bytes);
  virtual void zeroFill(void* device, size_t bytes);

  // The host kernels' GEMM primitive cache (kHost families).
  virtual cpu::GemmContext& gemm() = 0;
};

}  // namespace kdgrid
