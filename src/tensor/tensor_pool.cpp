#include "src/tensor/tensor_pool.h"

#include <bit>
#include <mutex>
#include <unordered_map>

namespace kdgrid {
namespace {

// The capacity class of a request: 64-byte aligned, then rounded up to a multiple of 1/8 of
// the power of two below it (sizes 2^k .. 2^(k+1) fall into 8 classes).
size_t capacityFor(size_t bytes) {
  size_t c = bytes ? (bytes + 63) / 64 * 64 : 64;
  if (c <= 1024) return c;
  const size_t step = (size_t{1} << (std::bit_width(c) - 1)) / 8;
  return (c + step - 1) / step * step;
}

}  // namespace

struct TensorPool::State final : BufferRecycler {
  explicit State(Backend& b) : backend(b) {}
  Backend& backend;
  // Serialises the free lists and counters: tensors may be dropped on another thread than
  // the one that made them.
  mutable std::mutex mutex;
  std::unordered_multimap<size_t, void*> free;  // capacity -> buffer
  size_t live = 0, peak = 0, cached = 0;
  size_t live_capacity = 0, peak_capacity = 0;

  ~State() override {
    for (auto& [cap, p] : free) backend.free(p, cap);
  }

  void* take(size_t bytes, size_t capacity) {
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto it = free.find(capacity);
      if (it != free.end()) {
        p = it->second;
        free.erase(it);
        cached -= capacity;
      }
    }
    if (!p) p = backend.allocate(capacity);
    std::lock_guard<std::mutex> lock(mutex);
    live += bytes;
    live_capacity += capacity;
    if (live > peak) peak = live;
    if (live_capacity > peak_capacity) peak_capacity = live_capacity;
    return p;
  }

  void recycle(void* data, size_t bytes, size_t capacity) noexcept override {
    bool keep = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      live -= bytes;
      live_capacity -= capacity;
      if (cached + capacity <= peak_capacity) {
        try {
          free.emplace(capacity, data);
          cached += capacity;
          keep = true;
        } catch (...) {  // out of memory for the list node: just free the buffer
        }
      }
    }
    if (!keep) backend.free(data, capacity);
  }
};

TensorPool::TensorPool(Backend& backend) : state_(std::make_shared<State>(backend)) {}
TensorPool::~TensorPool() = default;

Tensor TensorPool::empty(std::vector<int64_t> shape, DType dtype) {
  int64_t n = 1;
  for (int64_t d : shape) {
    KDGRID_CHECK(d >= 0, "TensorPool: negative dimension {}", d);
    n *= d;
  }
  const size_t bytes = static_cast<size_t>(n) * dtypeSize(dtype);
  const size_t capacity = capacityFor(bytes);
  void* p = state_->take(bytes, capacity);
  auto buffer = std::make_shared<Buffer>(p, bytes, capacity, state_->backend, state_);
  return Tensor::over(std::move(buffer), std::move(shape), dtype);
}

Tensor TensorPool::zeros(std::vector<int64_t> shape, DType dtype) {
  Tensor t = empty(std::move(shape), dtype);
  t.zero();
  return t;
}

size_t TensorPool::liveBytes() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->live;
}

size_t TensorPool::peakBytes() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->peak;
}

void TensorPool::resetPeak() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->peak = state_->live;
}

size_t TensorPool::cachedBytes() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->cached;
}

void TensorPool::trim() {
  std::unordered_multimap<size_t, void*> free;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    free.swap(state_->free);
    state_->cached = 0;
  }
  for (auto& [cap, p] : free) state_->backend.free(p, cap);
}

}  // namespace kdgrid
