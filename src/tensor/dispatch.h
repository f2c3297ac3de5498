// The op dispatch's helpers, shared by the files of src/tensor/ops*.cpp only: the backend
// check, the one conversion of a tensor into a kernel pointer (at<T>), the storage-type
// switch and the per-op timer. Nothing outside the ops includes this.
#pragma once

#include <string>

#include "src/tensor/op_profile.h"
#include "src/tensor/runtime.h"
#include "src/tensor/tensor.h"

namespace kdgrid::ops {

// Calls f(T{}) with T the C++ type of `dtype`.
template <typename F>
inline void byType(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kF32:
      return f(float{});
    case DType::kBF16:
      return f(bf16{});
    case DType::kF16:
      return f(f16{});
    case DType::kU32:
      break;
  }
  KDGRID_CHECK(false, "no floating-point kernel for {}", dtypeName(dtype));
}

// Every op's tensors live on the runtime's backend, whose kernel family picks the kernels
// (only kHost, kernels/cpu, so far).
inline void requireBackend(const Runtime& rt, const Tensor& t, const char* op) {
  KDGRID_CHECK(&t.backend() == &rt.backend, "{}: {} is not on the runtime's backend ({})", op,
               t.describe(), rt.backend.name());
}

// The one place a tensor becomes a pointer a kernel may touch: the address its backend gives
// host kernels (the device address itself on the CPU; the read-write alias on the guarded
// device), after checking the storage type.
inline void* atRaw(const Tensor& t) {
  return t.backend().hostAddress(t.raw());
}
template <typename T>
inline T* at(const Tensor& t) {
  KDGRID_CHECK(dtypeOf<T>() == t.dtype(), "tensor holds {}, not {}", dtypeName(t.dtype()),
               dtypeName(dtypeOf<T>()));
  return static_cast<T*>(atRaw(t));
}

inline void requireSame(const Tensor& a, const Tensor& b, const char* op) {
  KDGRID_CHECK(a.dtype() == b.dtype() && a.numel() == b.numel(), "{}: {} vs {}", op, a.describe(),
               b.describe());
}

inline int64_t rowsOf(const Tensor& t) {
  return t.numel() / t.dim(-1);
}

// Profile label "name MxNxK" of a GEMM.
inline std::string gemmLabel(const char* name, int64_t m, int64_t n, int64_t k) {
  return std::string(name) + " " + std::to_string(m) + "x" + std::to_string(n) + "x" +
         std::to_string(k);
}

// Times the enclosing op under a fixed label when rt.profile is set.
#define KDGRID_OP_TIMER(rt, label) \
  OpTimer op_timer_((rt).profile, [] { return std::string(label); })


}  // namespace kdgrid::ops
