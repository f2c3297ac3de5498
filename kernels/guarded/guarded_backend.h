// The guarded test device: a backend whose memory host code cannot touch, so a test can
// prove that everything outside the op dispatch and the staging copies leaves device memory
// alone (the seam a CUDA backend needs), without a GPU.
//
// Its pool is one memfd mapped twice: a PROT_NONE range whose addresses are the "device
// pointers" handed out (never made accessible: a dereference faults at once, on any thread,
// with no protection toggling), and a read-write range at another address that only
// hostAddress() reveals, to the op dispatch (src/tensor/ops.cpp) and the staging copies. The
// kernels are the CPU's, so a run on it is bit-identical to the CPU backend's; one that faults
// has host code reading or writing device memory behind the backend's back, and the SIGSEGV
// handler names the allocation the address falls in before the process dies.
//
// Test-only: linked into kdgrid-test and the tests, never into the kdgrid binary.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "kernels/backend.h"

namespace kdgrid::guarded {

class GuardedBackend final : public Backend {
 public:
  // Reserves `pool_bytes` of address space twice (pages are committed as they are written).
  explicit GuardedBackend(size_t pool_bytes);
  ~GuardedBackend() override;
  GuardedBackend(const GuardedBackend&) = delete;
  GuardedBackend& operator=(const GuardedBackend&) = delete;

  const char* name() const override { return "guarded"; }
  KernelFamily kernels() const override { return KernelFamily::kHost; }
  void* allocate(size_t bytes) override;
  void free(void* device, size_t bytes) noexcept override;
  void* hostAddress(const void* device) const override;
  bool hostAccessible() const override { return false; }
  cpu::GemmContext& gemm() override { return *gemm_; }

  // Whether `p` lies in the guarded (device) range.
  bool owns(const void* p) const;
  // "allocation #12 (4096 bytes at device offset 0x1000)", or "no live allocation", for the
  // fault report. Tries the lock only: safe to call from the SIGSEGV handler.
  void describeAddress(const void* p, char* out, size_t out_size) const;

 private:
  struct Allocation {
    size_t bytes;
    uint64_t serial;
  };
  size_t pool_bytes_;
  int fd_ = -1;
  char* device_ = nullptr;  // PROT_NONE view: the addresses handed out
  char* host_ = nullptr;    // read-write view of the same pages
  std::unique_ptr<cpu::GemmContext> gemm_;
  mutable std::mutex mutex_;
  std::map<size_t, size_t> free_;              // offset -> bytes, coalesced
  std::map<size_t, Allocation> allocations_;   // offset -> allocation
  uint64_t next_serial_ = 1;
};

}  // namespace kdgrid::guarded
