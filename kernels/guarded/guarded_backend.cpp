#include "kernels/guarded/guarded_backend.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm.h"

namespace kdgrid::guarded {

namespace {

constexpr size_t kAlign = 64;

// The backend the SIGSEGV handler asks; one guarded backend per process at a time.
std::atomic<GuardedBackend*> g_active{nullptr};
struct sigaction g_previous {};

void onSegv(int sig, siginfo_t* info, void* context) {
  GuardedBackend* backend = g_active.load();
  if (backend && backend->owns(info->si_addr)) {
    char where[160];
    backend->describeAddress(info->si_addr, where, sizeof where);
    char line[320];
    const int n = std::snprintf(line, sizeof line,
                                "kdgrid guarded device: host code touched device memory at %p, "
                                "%s, outside the op dispatch and the staging copies\n",
                                info->si_addr, where);
    if (n > 0) (void)!write(STDERR_FILENO, line, static_cast<size_t>(n));
  }
  // Die of the signal as before (the default action, or the handler that was there).
  sigaction(SIGSEGV, &g_previous, nullptr);
  if (!(g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_handler == SIG_DFL) return;  // re-faults
  if (g_previous.sa_flags & SA_SIGINFO)
    g_previous.sa_sigaction(sig, info, context);
  else if (g_previous.sa_handler != SIG_IGN)
    g_previous.sa_handler(sig);
}

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("guarded device: " + what + ": " + std::strerror(errno));
}

}  // namespace

GuardedBackend::GuardedBackend(size_t pool_bytes)
    : pool_bytes_((pool_bytes + 4095) / 4096 * 4096), gemm_(std::make_unique<cpu::GemmContext>()) {
  fd_ = memfd_create("kdgrid-guarded-device", MFD_CLOEXEC);
  if (fd_ < 0) fail("memfd_create");
  if (ftruncate(fd_, static_cast<off_t>(pool_bytes_)) != 0) fail("ftruncate");
  void* device = mmap(nullptr, pool_bytes_, PROT_NONE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
  if (device == MAP_FAILED) fail("mmap (device view)");
  void* host =
      mmap(nullptr, pool_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
  if (host == MAP_FAILED) fail("mmap (host view)");
  device_ = static_cast<char*>(device);
  host_ = static_cast<char*>(host);
  // Offset 0 is never handed out, so no device pointer compares equal to the pool's start.
  free_.emplace(kAlign, pool_bytes_ - kAlign);
  GuardedBackend* expected = nullptr;
  if (!g_active.compare_exchange_strong(expected, this))
    throw std::logic_error("guarded device: only one may exist per process");
  struct sigaction action {};
  action.sa_sigaction = onSegv;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &g_previous);
}

GuardedBackend::~GuardedBackend() {
  sigaction(SIGSEGV, &g_previous, nullptr);
  g_active.store(nullptr);
  munmap(device_, pool_bytes_);
  munmap(host_, pool_bytes_);
  close(fd_);
}

void* GuardedBackend::allocate(size_t bytes) {
  const size_t size = (bytes ? bytes + kAlign - 1 : kAlign) / kAlign * kAlign;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {  // first fit
    if (it->second < size) continue;
    const size_t offset = it->first, left = it->second - size;
    free_.erase(it);
    if (left) free_.emplace(offset + size, left);
    allocations_.emplace(offset, Allocation{size, next_serial_++});
    return device_ + offset;
  }
  throw std::bad_alloc();
}

void GuardedBackend::free(void* device, size_t) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t offset = static_cast<char*>(device) - device_;
  const auto found = allocations_.find(offset);
  if (found == allocations_.end()) return;
  size_t start = offset, size = found->second.bytes;
  allocations_.erase(found);
  // Coalesce with the free neighbours.
  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == start + size) {
    size += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      size += prev->second;
      free_.erase(prev);
    }
  }
  free_.emplace(start, size);
}

void* GuardedBackend::hostAddress(const void* device) const {
  if (!device) return nullptr;
  const char* p = static_cast<const char*>(device);
  if (p < device_ || p >= device_ + pool_bytes_) {
    throw std::logic_error("guarded device: a pointer outside the device pool reached the op "
                           "dispatch (a host buffer where a device tensor belongs)");
  }
  return host_ + (p - device_);
}

bool GuardedBackend::owns(const void* p) const {
  const char* c = static_cast<const char*>(p);
  return c >= device_ && c < device_ + pool_bytes_;
}

void GuardedBackend::describeAddress(const void* p, char* out, size_t out_size) const {
  const size_t offset = static_cast<const char*>(p) - device_;
  if (!mutex_.try_lock()) {
    std::snprintf(out, out_size, "device offset %#zx (allocator busy)", offset);
    return;
  }
  auto it = allocations_.upper_bound(offset);
  if (it != allocations_.begin() && (--it, offset < it->first + it->second.bytes)) {
    std::snprintf(out, out_size, "byte %zu of allocation #%llu (%zu bytes at device offset %#zx)",
                  offset - it->first, static_cast<unsigned long long>(it->second.serial),
                  it->second.bytes, it->first);
  } else {
    std::snprintf(out, out_size, "device offset %#zx, in no live allocation", offset);
  }
  mutex_.unlock();
}

}  // namespace kdgrid::guarded
