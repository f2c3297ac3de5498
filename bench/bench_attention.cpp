// Speed of the CPU attention (forward + backward) and vocabulary-parallel cross-entropy
// kernels at the engine's target shape (GPT-2 d_model 256 = 4 heads x 64, seq 256, batch 8;
// vocab 4096). Threads: OMP_NUM_THREADS (default: all cores).
//
// Attention FLOPs count only the unmasked (query, key) pairs P = sum_t (#keys t attends):
// forward 2 products (Q K^T, P V) x 2 hd FLOPs per pair = 4 hd P; backward 5 products
// (recomputed Q K^T, dO V^T, P^T dO, dS^T Q, dS K) = 10 hd P. Softmax/exp work and the
// masked entries the kernels compute on diagonal blocks are not counted.
// Cross-entropy bytes: the forward reads the logits once (4 N V), the backward reads and
// writes them once (8 N V); the [N] statistics are not counted.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/cross_entropy.h"
#include "src/core/dtype.h"

namespace {

using Clock = std::chrono::steady_clock;

// Median seconds per call of fn over at least 20 calls and 1 s, after two warm-up calls. The
// median, not the mean: on a machine shared with other jobs a few calls are slowed by others.
double secondsPerCall(const std::function<void()>& fn) {
  fn();
  fn();
  std::vector<double> times;
  double total = 0;
  while (times.size() < 20 || total < 1.0) {
    const auto start = Clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    total += times.back();
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

template <typename T>
void benchAttention(const char* name, int64_t batch, int64_t seq, int64_t heads, int64_t hd,
                    int64_t window) {
  const int64_t channels = heads * hd;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<T> qkv(batch * seq * 3 * channels), dout(batch * seq * channels), out(dout.size()),
      dqkv(qkv.size());
  std::vector<float> lse(batch * heads * seq);
  for (auto& x : qkv) x = kdgrid::fromFloat<T>(dist(rng));
  for (auto& x : dout) x = kdgrid::fromFloat<T>(dist(rng));

  double pairs = 0;
  for (int64_t t = 0; t < seq; ++t) pairs += window > 0 && window < t + 1 ? window : t + 1;
  pairs *= double(batch * heads);
  const double fwd_flops = 4.0 * hd * pairs, bwd_flops = 10.0 * hd * pairs;

  const double fwd = secondsPerCall([&] {
    kdgrid::cpu::attentionForward(out.data(), lse.data(), qkv.data(), batch, seq, channels, hd,
                                  window);
  });
  const double bwd = secondsPerCall([&] {
    kdgrid::cpu::attentionBackward(dqkv.data(), dout.data(), qkv.data(), lse.data(), batch, seq,
                                   channels, hd, window);
  });
  std::printf(
      "attention %-4s B=%ld T=%ld nh=%ld hd=%ld W=%-3ld  fwd %7.3f ms %6.1f GFLOP/s  "
      "bwd %7.3f ms %6.1f GFLOP/s  fwd+bwd %7.3f ms %6.1f GFLOP/s\n",
      name, long(batch), long(seq), long(heads), long(hd), long(window), fwd * 1e3,
      fwd_flops / fwd * 1e-9, bwd * 1e3, bwd_flops / bwd * 1e-9, (fwd + bwd) * 1e3,
      (fwd_flops + bwd_flops) / (fwd + bwd) * 1e-9);
}

void benchXent(int64_t rows, int64_t vocab) {
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> logits(rows * vocab), m(rows), s(rows), z(rows), loss(rows);
  std::vector<uint32_t> targets(rows);
  for (auto& x : logits) x = dist(rng);
  for (auto& t : targets) t = uint32_t(rng() % vocab);
  const kdgrid::cpu::VocabSlice slice{0, vocab, vocab};
  // tp = 1: the all-reduces are identities. The backward overwrites the logits with their
  // gradient and the next forward reads those: the same work, no refill that would warm caches.
  const double fwd = secondsPerCall([&] {
    kdgrid::cpu::xentRowStats(m.data(), s.data(), z.data(), logits.data(), targets.data(), rows,
                              slice);
    kdgrid::cpu::xentRescaleSums(s.data(), m.data(), m.data(), rows);
    kdgrid::cpu::xentLoss(loss.data(), m.data(), s.data(), z.data(), targets.data(), rows);
  });
  const double bwd = secondsPerCall([&] {
    kdgrid::cpu::xentBackwardInPlace(logits.data(), m.data(), s.data(), targets.data(), rows, slice,
                                     1.0f / float(rows));
  });
  const double bytes = 4.0 * double(rows * vocab);
  std::printf(
      "xent N=%ld V=%ld  fwd %7.3f ms %6.1f GB/s  bwd %7.3f ms %6.1f GB/s  fwd+bwd %7.3f ms "
      "%6.1f GB/s\n",
      long(rows), long(vocab), fwd * 1e3, bytes / fwd * 1e-9, bwd * 1e3, 2 * bytes / bwd * 1e-9,
      (fwd + bwd) * 1e3, 3 * bytes / (fwd + bwd) * 1e-9);
}

}  // namespace

int main() {
  std::printf("threads: %d\n", omp_get_max_threads());
  benchAttention<float>("fp32", 8, 256, 4, 64, 0);
  benchAttention<kdgrid::bf16>("bf16", 8, 256, 4, 64, 0);
  benchAttention<float>("fp32", 8, 256, 4, 64, 64);
  benchXent(2048, 4096);
  return 0;
}
