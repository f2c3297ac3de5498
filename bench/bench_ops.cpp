// Memory bandwidth of the CPU op families at the engine's sizes (rows = 2048 tokens,
// C = 256 / 1024; AdamW over ~4M parameters). Prints GB/s = bytes the op must move (each
// operand read or written once) / median time over the repeats.
//
//   build/bench/bench_ops [repeats]      threads: OMP_NUM_THREADS (default: all cores)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/adamw.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/layernorm.h"
#include "src/core/dtype.h"

namespace {

using kdgrid::bf16;
using kdgrid::f16;

// Median wall time of fn() in seconds, after one warm-up call.
double medianSeconds(int repeats, const std::function<void()>& fn) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void report(const char* op, const char* dtype, const std::string& shape, double bytes,
            double seconds) {
  std::printf("%-14s %-5s %-14s %9.1f us %8.2f GB/s\n", op, dtype, shape.c_str(), seconds * 1e6,
              bytes / seconds * 1e-9);
}

template <typename T>
std::vector<T> randomBuffer(size_t n, std::mt19937& rng, float scale) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<T> v(n);
  for (auto& x : v) x = T(dist(rng));
  return v;
}

template <typename T>
void benchRowOps(const char* dtype, int64_t rows, int64_t cols, int repeats) {
  std::mt19937 rng(1234);
  const size_t n = static_cast<size_t>(rows * cols);
  const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
  auto x = randomBuffer<T>(n, rng, 1.0f);
  auto dout = randomBuffer<T>(n, rng, 1.0f);
  std::vector<T> out(n), dx(n);
  auto weight = randomBuffer<float>(static_cast<size_t>(cols), rng, 1.0f);
  auto bias = randomBuffer<float>(static_cast<size_t>(cols), rng, 1.0f);
  std::vector<float> mean(rows), rstd(rows), dw(cols), db(cols);
  const double act = static_cast<double>(n) * sizeof(T);

  // LN forward: read x, write out (+ rows * 8 bytes of statistics).
  double s = medianSeconds(repeats, [&] {
    kdgrid::cpu::layerNormForward(out.data(), mean.data(), rstd.data(), x.data(), weight.data(),
                                  bias.data(), rows, cols);
  });
  report("layernorm_fwd", dtype, shape, 2 * act + rows * 8.0, s);
  // LN backward: read dout and x, write dx (no accumulate).
  s = medianSeconds(repeats, [&] {
    kdgrid::cpu::layerNormBackward(dx.data(), dw.data(), db.data(), dout.data(), x.data(),
                                   weight.data(), mean.data(), rstd.data(), rows, cols, false);
  });
  report("layernorm_bwd", dtype, shape, 3 * act + rows * 8.0, s);
  // GELU on the fc1 output, (rows, 4 * cols) in the engine; measured on (rows, cols) here and
  // on the 4x buffer below.
  for (int64_t width : {cols, 4 * cols}) {
    const size_t m = static_cast<size_t>(rows * width);
    auto h = randomBuffer<T>(m, rng, 2.0f);
    auto dh = randomBuffer<T>(m, rng, 1.0f);
    std::vector<T> g(m), dg(m);
    const std::string gshape = std::to_string(rows) + "x" + std::to_string(width);
    const double bytes = static_cast<double>(m) * sizeof(T);
    s = medianSeconds(
        repeats, [&] { kdgrid::cpu::geluForward(g.data(), h.data(), static_cast<int64_t>(m)); });
    report("gelu_fwd", dtype, gshape, 2 * bytes, s);
    s = medianSeconds(repeats, [&] {
      kdgrid::cpu::geluBackward(dg.data(), dh.data(), h.data(), static_cast<int64_t>(m));
    });
    report("gelu_bwd", dtype, gshape, 3 * bytes, s);
  }
}

template <typename T>
void benchAdamW(const char* dtype, int64_t n, int repeats) {
  std::mt19937 rng(99);
  auto param = randomBuffer<float>(static_cast<size_t>(n), rng, 0.02f);
  auto grad = randomBuffer<float>(static_cast<size_t>(n), rng, 1e-3f);
  std::vector<float> m(n), v(n);
  std::vector<T> copy(n);
  kdgrid::cpu::AdamWConfig config;
  config.lr = 1e-4f;
  config.weight_decay = 0.1f;
  int64_t step = 0;
  const bool with_copy = !std::is_same_v<T, float>;
  const double s = medianSeconds(repeats, [&] {
    kdgrid::cpu::adamwStep(param.data(), m.data(), v.data(), grad.data(),
                           with_copy ? copy.data() : static_cast<T*>(nullptr), n, config, ++step,
                           0.5f, true);
  });
  // param, m, v read and written, grad read (+ the low-precision copy written).
  const double bytes = static_cast<double>(n) * (7 * 4 + (with_copy ? sizeof(T) : 0));
  report(with_copy ? "adamw+copy" : "adamw", dtype, std::to_string(n), bytes, s);
}

// The global-norm pass that precedes the step: reads the gradients once.
void benchSumSquares(int64_t n, int repeats) {
  std::mt19937 rng(7);
  auto grad = randomBuffer<float>(static_cast<size_t>(n), rng, 1e-3f);
  double sink = 0.0;
  const double s = medianSeconds(repeats, [&] { sink += kdgrid::cpu::sumSquares(grad.data(), n); });
  report("sum_squares", "fp32", std::to_string(n), n * 4.0, s);
  if (!(sink >= 0.0)) std::printf("unexpected sum %g\n", sink);  // keeps the calls alive
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
  std::printf("threads %d, repeats %d (median)\n", omp_get_max_threads(), repeats);
  for (int64_t cols : {256, 1024}) {
    benchRowOps<float>("fp32", 2048, cols, repeats);
    benchRowOps<bf16>("bf16", 2048, cols, repeats);
    benchRowOps<f16>("fp16", 2048, cols, repeats);
  }
  const int64_t params = 4 << 20;
  benchAdamW<float>("fp32", params, repeats);
  benchAdamW<bf16>("bf16", params, repeats);
  benchAdamW<f16>("fp16", params, repeats);
  benchSumSquares(params, repeats);
  return 0;
}
