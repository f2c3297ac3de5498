// Shared by the kernel suites: output buffers with guard bytes after the end, and the tolerance
// rule |got - ref| <= atol + rtol * |ref| (with every got finite).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <sstream>
#include <vector>

#include "core/dtype.h"

namespace kdgrid::test {

inline double asDouble(double x) {
  return x;
}
inline double asDouble(float x) {
  return x;
}
inline double asDouble(bf16 x) {
  return toFloat(x);
}
inline double asDouble(f16 x) {
  return toFloat(x);
}

// n elements of T followed by kGuard elements of a byte pattern that a kernel must not touch.
template <typename T>
class GuardedBuffer {
 public:
  static constexpr size_t kGuard = 64;
  static constexpr unsigned char kPattern = 0xA7;

  explicit GuardedBuffer(size_t n) : n_(n), data_(n + kGuard) {
    std::memset(static_cast<void*>(data_.data() + n), kPattern, kGuard * sizeof(T));
  }
  GuardedBuffer(const std::vector<T>& init) : GuardedBuffer(init.size()) {
    std::copy(init.begin(), init.end(), data_.begin());
  }
  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  std::vector<T> values() const { return {data_.begin(), data_.begin() + n_}; }
  bool guardIntact() const {
    const auto* p = reinterpret_cast<const unsigned char*>(data_.data() + n_);
    for (size_t i = 0; i < kGuard * sizeof(T); ++i)
      if (p[i] != kPattern) return false;
    return true;
  }

 private:
  size_t n_;
  std::vector<T> data_;
};

struct Tolerance {
  double atol = 0;
  double rtol = 0;
};

// All n got[i] finite and within atol + rtol * |ref[i]| of ref[i]; on failure names the count,
// the worst element and its values.
template <typename G, typename R>
::testing::AssertionResult allClose(const G* got, const R* ref, size_t n, Tolerance tol) {
  size_t bad = 0, worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < n; ++i) {
    const double g = asDouble(got[i]), r = asDouble(ref[i]);
    const double limit = tol.atol + tol.rtol * std::fabs(r);
    const double excess = std::isfinite(g) ? std::fabs(g - r) - limit : INFINITY;
    if (excess > 0) {
      ++bad;
      if (excess > worst_excess) worst_excess = excess, worst = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  std::ostringstream os;
  os.precision(9);
  os << bad << " of " << n << " elements out of tolerance (atol " << tol.atol << ", rtol "
     << tol.rtol << "); worst [" << worst << "]: got " << asDouble(got[worst]) << ", ref "
     << asDouble(ref[worst]);
  return ::testing::AssertionFailure() << os.str();
}

template <typename V>
double maxAbs(const V& v) {
  double m = 0;
  for (const auto& x : v) m = std::max(m, std::fabs(asDouble(x)));
  return m;
}

// n values ~ N(mean, stddev) from a fixed seed.
inline std::vector<float> normalValues(size_t n, uint32_t seed, float stddev = 1.0f,
                                       float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace kdgrid::test
