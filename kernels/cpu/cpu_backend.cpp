#include "kernels/cpu/cpu_backend.h"

#include <cstdlib>
#include <new>

#include "kernels/cpu/gemm.h"

namespace kdgrid::cpu {

CpuBackend::CpuBackend() : gemm_(std::make_unique<GemmContext>()) {}
CpuBackend::~CpuBackend() = default;

void* CpuBackend::allocate(size_t bytes) {
  // aligned_alloc wants a multiple of the alignment.
  void* p = std::aligned_alloc(64, bytes ? (bytes + 63) / 64 * 64 : 64);
  if (!p) throw std::bad_alloc();
  return p;
}

void CpuBackend::free(void* device, size_t) noexcept {
  std::free(device);
}

}  // namespace kdgrid::cpu
