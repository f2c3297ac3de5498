// The CPU backend: host memory (64-byte aligned for AVX-512), kernels/cpu, oneDNN GEMM.
#pragma once

#include <memory>

#include "kernels/backend.h"

namespace kdgrid::cpu {

class CpuBackend final : public Backend {
 public:
  CpuBackend();
  ~CpuBackend() override;
  const char* name() const override { return "cpu"; }
  KernelFamily kernels() const override { return KernelFamily::kHost; }
  void* allocate(size_t bytes) override;
  void free(void* device, size_t bytes) noexcept override;
  void* hostAddress(const void* device) const override { return const_cast<void*>(device); }
  bool hostAccessible() const override { return true; }
  GemmContext& gemm() override { return *gemm_; }

 private:
  std::unique_ptr<GemmContext> gemm_;
};

}  // namespace kdgrid::cpu
