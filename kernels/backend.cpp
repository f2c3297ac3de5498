#include "kernels/backend.h"

#include <cstring>

namespace kdgrid {

// The kHost defaults: plain copies through the host addresses.
void Backend::copyToHost(void* host, const void* device, size_t bytes) {
  if (bytes) std::memcpy(host, hostAddress(device), bytes);
}

void Backend::copyFromHost(void* device, const void* host, size_t bytes) {
  if (bytes) std::memcpy(hostAddress(device), host, bytes);
}

void Backend::copyOnDevice(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memmove(hostAddress(dst), hostAddress(src), bytes);
}

void Backend::zeroFill(void* device, size_t bytes) {
  if (bytes) std::memset(hostAddress(device), 0, bytes);
}

}  // namespace kdgrid
