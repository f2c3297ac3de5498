// Helpers for kernel tests: guarded output buffers and the `atol + rtol * |ref|` rule.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <sstream>
#include <vector>

namespace kdgrid::test {

// `n` elements followed by kGuard guard elements whose bytes hold kPattern. A kernel that
// writes past element n - 1 changes the guard; guardIntact() tells.
template <typename T>
class GuardedBuffer {
 public:
  static constexpr size_t kGuard = 64;
  static constexpr unsigned char kPattern = 0xA5;

  explicit GuardedBuffer(size_t n) : n_(n), data_(n + kGuard) { fillPattern(n_, n_ + kGuard); }
  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

  // Fills elements [begin, end) with the guard pattern (e.g. padding columns a kernel must not
  // touch); check them with patternIntact(begin, end).
  void fillPattern(size_t begin, size_t end) {
    auto* bytes = reinterpret_cast<unsigned char*>(data_.data());
    end = std::min(end, data_.size());
    for (size_t i = begin * sizeof(T); i < end * sizeof(T); ++i) bytes[i] = kPattern;
  }
  bool patternIntact(size_t begin, size_t end) const {
    const auto* bytes = reinterpret_cast<const unsigned char*>(data_.data());
    for (size_t i = begin * sizeof(T); i < end * sizeof(T); ++i)
      if (bytes[i] != kPattern) return false;
    return true;
  }
  bool guardIntact() const { return patternIntact(n_, n_ + kGuard); }

 private:
  size_t n_;
  std::vector<T> data_;
};

// Every got[i] is finite and |got[i] - ref[i]| <= atol + atol_each[i] + rtol * |ref[i]|
// (atol_each may be empty). The message lists the number of failures and the first few.
inline ::testing::AssertionResult allClose(const std::vector<double>& got,
                                           const std::vector<double>& ref, double atol, double rtol,
                                           const std::vector<double>& atol_each = {}) {
  if (got.size() != ref.size() || (!atol_each.empty() && atol_each.size() != ref.size()))
    return ::testing::AssertionFailure() << "size mismatch";
  size_t bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = atol + (atol_each.empty() ? 0.0 : atol_each[i]) + rtol * std::fabs(ref[i]);
    if (!std::isfinite(got[i]) || !(std::fabs(got[i] - ref[i]) <= tol)) {
      if (bad < 5)
        first << " [" << i << "] got " << got[i] << " ref " << ref[i] << " tol " << tol << ";";
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.size() << " out of tolerance:" << first.str();
}

}  // namespace kdgrid::test
