#include "src/tensor/staging.h"

namespace kdgrid {

void copyToHost(const Tensor& t, void* host) {
  t.backend().copyToHost(host, t.raw(), t.bytes());
}

void copyFromHost(Tensor& t, const void* host) {
  t.backend().copyFromHost(t.raw(), host, t.bytes());
}

HostView::HostView(const Tensor& t, bool load) {
  if (t.backend().hostAccessible()) {
    data_ = t.raw();
  } else {
    staging_.resize(t.bytes());
    if (load) copyToHost(t, staging_.data());
    data_ = staging_.data();
  }
}

void HostView::store(Tensor& t) const {
  if (!staging_.empty()) copyFromHost(t, staging_.data());
}

void copyTensor(Tensor& dst, const Tensor& src) {
  KDGRID_CHECK(&dst.backend() == &src.backend() && dst.bytes() == src.bytes(),
               "copyTensor: {} -> {}", src.describe(), dst.describe());
  dst.backend().copyOnDevice(dst.raw(), src.raw(), src.bytes());
}

}  // namespace kdgrid
