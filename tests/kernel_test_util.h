// Helpers for kernel tests: sentinel-guarded buffers, tolerance checks, random fills.
#pragma once

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "src/core/dtype.h"

namespace kdgrid::test {

// n elements followed by kGuard elements of a fixed byte pattern: a kernel that writes past
// element n - 1 changes the pattern (guardIntact() turns false). Reading the guard as values
// gives NaN for fp32/bf16/fp16, so a kernel that reads past the end tends to show it too.
template <typename T>
class GuardedBuffer {
 public:
  static constexpr size_t kGuard = 64;
  static constexpr unsigned char kPattern = 0xff;

  explicit GuardedBuffer(size_t n) : n_(n), data_(n + kGuard) { fillPattern(n_, n_ + kGuard); }
  explicit GuardedBuffer(const std::vector<T>& init) : GuardedBuffer(init.size()) {
    std::copy(init.begin(), init.end(), data_.begin());
  }
  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  std::vector<T> values() const { return {data_.begin(), data_.begin() + n_}; }

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

// Central differences (f(x + h e_i) - f(x - h e_i)) / 2h for every i: the gradient of a scalar
// function of x, to check a reference backward. In double with h = 1e-5 the truncation error is
// ~h^2 |f'''| ~ 1e-10 and the cancellation error ~1e-16 / h ~ 1e-11.
template <typename F>
std::vector<double> centralDifferences(F&& f, const std::vector<double>& x, double h = 1e-5) {
  std::vector<double> fd(x.size());
  auto xp = x, xm = x;
  for (size_t i = 0; i < x.size(); ++i) {
    xp[i] += h;
    xm[i] -= h;
    fd[i] = (f(xp) - f(xm)) / (2 * h);
    xp[i] = xm[i] = x[i];
  }
  return fd;
}

// Writes one tensor-parallel rank's gradient slice local [rows, v_local], which holds the
// logical columns [start, start + v_local) of full [rows, vocab], into full; the slice's
// padding columns (ids >= vocab) must be exactly zero.
inline void gatherVocabSlice(std::vector<float>& full, const float* local, int64_t rows,
                             int64_t vocab, int64_t start, int64_t v_local) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < v_local; ++c) {
      const int64_t id = start + c;
      const float g = local[r * v_local + c];
      if (id < vocab)
        full[r * vocab + id] = g;
      else
        EXPECT_EQ(g, 0.0f) << "padding id " << id << " row " << r;
    }
}

// |got - want| <= atol + rtol * |want|, elementwise.
struct Tolerance {
  double atol;
  double rtol;
};

// Relative tolerance for an output STORED as T (compared after widening to fp32):
// - fp32 1e-5: the fast kernels compute in fp32 where the references use double, and sum in
//   a different order; the difference is a few ulp (2^-24 = 6e-8 each) per operation,
//   growing with reduction length (<= ~1000 here), far below 1e-5 yet far above nothing.
// - bf16 1e-2: 8 significant bits, so rounding the output alone costs up to 2^-8 = 3.9e-3
//   relative; 1e-2 also covers fp32 noise before that rounding tipping a value to the
//   neighbouring bf16 (one ulp, 7.8e-3).
// - fp16 2e-3: 11 significant bits, one ulp is at most 2^-10 = 9.8e-4 relative; 2e-3 is two
//   ulps. (Subnormal fp16 outputs, below 6.1e-5, need an atol of at least 6e-8.)
template <typename T>
constexpr double storageRtol() {
  if constexpr (std::is_same_v<T, bf16>) {
    return 1e-2;
  } else if constexpr (std::is_same_v<T, f16>) {
    return 2e-3;
  } else {
    return 1e-5;
  }
}

inline double asDouble(double x) { return x; }
inline double asDouble(float x) { return x; }
inline double asDouble(bf16 x) { return toFloat(x); }
inline double asDouble(f16 x) { return toFloat(x); }

// Checks every got[i] is finite and within tol of ref[i] (any storage types, compared in
// double); on failure reports the count and the first few misses.
template <typename G, typename R>
::testing::AssertionResult allClose(const G* got, const R* ref, size_t n, Tolerance tol) {
  size_t bad = 0;
  std::string first;
  for (size_t i = 0; i < n; ++i) {
    const double g = asDouble(got[i]), r = asDouble(ref[i]);
    const bool ok = std::isfinite(g) && std::fabs(g - r) <= tol.atol + tol.rtol * std::fabs(r);
    if (!ok) {
      if (bad < 5) {
        first += "\n  [" + std::to_string(i) + "] got " + std::to_string(g) + " want " +
                 std::to_string(r) + " diff " + std::to_string(g - r);
      }
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << n << " values out of tolerance (atol "
                                       << tol.atol << ", rtol " << tol.rtol << ")" << first;
}

// The same rule with a per-element extra allowance (a derived error bound, e.g. GEMM's
// K-dependent one): |got[i] - ref[i]| <= atol + atol_each[i] + rtol * |ref[i]|.
inline ::testing::AssertionResult allClose(const std::vector<double>& got,
                                           const std::vector<double>& ref, double atol, double rtol,
                                           const std::vector<double>& atol_each = {}) {
  if (got.size() != ref.size() || (!atol_each.empty() && atol_each.size() != ref.size()))
    return ::testing::AssertionFailure() << "size mismatch";
  size_t bad = 0;
  std::string first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = atol + (atol_each.empty() ? 0.0 : atol_each[i]) + rtol * std::fabs(ref[i]);
    if (!std::isfinite(got[i]) || !(std::fabs(got[i] - ref[i]) <= tol)) {
      if (bad < 5) {
        first += "\n  [" + std::to_string(i) + "] got " + std::to_string(got[i]) + " ref " +
                 std::to_string(ref[i]) + " tol " + std::to_string(tol);
      }
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << got.size() << " out of tolerance" << first;
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

template <typename T>
std::vector<float> toFloats(const T* x, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = toFloat(x[i]);
  return out;
}
template <typename T>
std::vector<float> toFloats(const std::vector<T>& v) {
  return toFloats(v.data(), v.size());
}

// fp32 values rounded to the storage type T.
template <typename T>
std::vector<T> toStorage(const std::vector<float>& v) {
  std::vector<T> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = fromFloat<T>(v[i]);
  return out;
}

// x[i] = T(uniform(lo, hi)).
template <typename T>
void fillUniform(T* x, size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  for (size_t i = 0; i < n; ++i) x[i] = fromFloat<T>(dist(rng));
}

// Sets the OpenMP thread count for the scope (kernels read omp_get_max_threads()).
class ScopedThreads {
 public:
  explicit ScopedThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ScopedThreads() { omp_set_num_threads(saved_); }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int saved_;
};

// Bitwise equality of two buffers of the same type.
template <typename T>
bool sameBits(const T* a, const T* b, size_t n) {
  return std::memcmp(static_cast<const void*>(a), static_cast<const void*>(b), n * sizeof(T)) == 0;
}

}  // namespace kdgrid::test
