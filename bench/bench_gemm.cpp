// GEMM throughput of kernels/cpu/gemm.h: square 2048^3 products and the products of one
// training step of the reference GPT-2 (4 layers, 8 x 256 = 2048 tokens, d_model 256, 4 heads,
// d_ff 1024, vocab 4096), in fp32 and in bf16 (fp32 weight gradients), a whole step's GEMM time
// from those, then the "gemm peak" that the training benchmark divides by.
//
// Run (2 threads, AVX-512 OpenBLAS settings for any comparison run alongside):
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE build/bench/bench_gemm --threads 2
// Figures are GFLOP/s = 2*M*N*K / seconds, best and median of --repeats timed runs after one
// warm-up (primitive creation and caches). Run it on an otherwise idle machine: when another
// process holds one of the two cores, each 2-thread product waits for the preempted thread and
// times come out in multiples of the scheduler tick (seen here: every product ~8 ms).
#include <fmt/format.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "src/core/dtype.h"

namespace {

using kdgrid::bf16;
using kdgrid::DType;
using kdgrid::cpu::GemmContext;

struct Problem {
  const char* name;
  bool ta, tb;
  int64_t m, n, k;
  bool c_fp32;  // C is fp32 whatever the input type (weight gradients, attention scores)
  float beta;   // 1 accumulates (weight gradients)
  bool bias;
  float alpha = 1.0f;
  kdgrid::cpu::GemmBatch batch{};     // default: one product
  int64_t lda = 0, ldb = 0, ldc = 0;  // 0: dense rows
  int per_step = 1;                   // how often one training step runs this product
};

struct Timing {
  double best_gflops = 0, median_gflops = 0, median_s = 0;
};

// Elements an operand spans: the last block's offset plus its rows.
int64_t span(int64_t outer, int64_t inner, int64_t s_outer, int64_t s_inner, int64_t rows,
             int64_t ld) {
  return (outer - 1) * s_outer + (inner - 1) * s_inner + rows * ld;
}

template <typename T>
Timing timeProblem(GemmContext& ctx, const Problem& p, int repeats) {
  const auto& bt = p.batch;
  const int64_t lda = p.lda ? p.lda : (p.ta ? p.m : p.k), ldb = p.ldb ? p.ldb : (p.tb ? p.k : p.n);
  const int64_t ldc = p.ldc ? p.ldc : p.n;
  const int64_t a_size = span(bt.outer, bt.inner, bt.a_outer, bt.a_inner, p.ta ? p.k : p.m, lda);
  const int64_t b_size = span(bt.outer, bt.inner, bt.b_outer, bt.b_inner, p.tb ? p.n : p.k, ldb);
  const int64_t c_size = span(bt.outer, bt.inner, bt.c_outer, bt.c_inner, p.m, ldc);
  std::vector<T> a(a_size), b(b_size), c(c_size);
  std::vector<float> c32(c_size), bias(p.n, 0.01f);
  for (int64_t i = 0; i < a_size; ++i) a[i] = T(static_cast<float>(i % 7 - 3) / 8.0f);
  for (int64_t i = 0; i < b_size; ++i) b[i] = T(static_cast<float>(i % 5 - 2) / 8.0f);
  const float* bias_ptr = p.bias ? bias.data() : nullptr;
  std::vector<double> seconds;
  for (int r = 0; r <= repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    if (p.c_fp32) {
      kdgrid::cpu::gemmBatched(ctx, bt, p.ta, p.tb, p.m, p.n, p.k, p.alpha, a.data(), lda, b.data(),
                               ldb, p.beta, c32.data(), ldc, bias_ptr);
    } else {
      kdgrid::cpu::gemmBatched(ctx, bt, p.ta, p.tb, p.m, p.n, p.k, p.alpha, a.data(), lda, b.data(),
                               ldb, p.beta, c.data(), ldc, bias_ptr);
    }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r > 0) seconds.push_back(s);  // r == 0: warm-up
  }
  std::sort(seconds.begin(), seconds.end());
  const double flop = 2.0 * p.m * p.n * p.k * bt.outer * bt.inner;
  Timing t;
  t.best_gflops = flop / seconds.front() / 1e9;
  t.median_s = seconds[seconds.size() / 2];
  t.median_gflops = flop / t.median_s / 1e9;
  return t;
}

void printRow(const char* dtype, const Problem& p, const char* pass, const Timing& t) {
  const std::string batch =
      p.batch.outer * p.batch.inner > 1 ? fmt::format(" x{}", p.batch.outer * p.batch.inner) : "";
  fmt::print("{:<5} {:<9} {:<5} {:>5} {:>5} {:>5} {:>2} {:>2} {:<5} {:>8.1f} {:>8.1f}{}\n", dtype,
             p.name, pass, p.m, p.n, p.k, p.ta ? "T" : "N", p.tb ? "T" : "N",
             p.c_fp32 ? "fp32" : dtype, t.best_gflops, t.median_gflops, batch);
}

template <typename T>
void runSuite(GemmContext& ctx, const char* dtype, int repeats, int64_t square) {
  std::vector<Problem> problems;
  for (int t = 0; t < 4; ++t)
    problems.push_back(
        {"square", (t & 1) != 0, (t & 2) != 0, square, square, square, false, 0.0f, false});
  // Linear layers Y[T, out] = X[T, in] W^T + b of one step: (out, in) per layer kind.
  struct Linear {
    const char* name;
    int64_t out, in;
    bool bias;
  };
  const int64_t tokens = 2048;
  const int layers = 4;
  const Linear linears[] = {{"qkv", 768, 256, true},
                            {"attn.out", 256, 256, true},
                            {"fc1", 1024, 256, true},
                            {"fc2", 256, 1024, true},
                            {"lm_head", 4096, 256, false}};
  std::vector<Problem> step;
  for (const Linear& l : linears) {
    step.push_back({l.name, false, true, tokens, l.out, l.in, false, 0.0f, l.bias});  // Y
    step.push_back({l.name, false, false, tokens, l.in, l.out, false, 0.0f, false});  // dX
    step.push_back({l.name, true, false, l.out, l.in, tokens, true, 1.0f, false});    // dW +=
    // Block linears run once per layer, the LM head once.
    for (int j = 1; j <= 3; ++j) step[step.size() - j].per_step = l.bias ? layers : 1;
  }
  // Attention's per-(sequence, head) products straight inside the [B, T, 3D] qkv buffer
  // (gemmBatched, outer = sequence, inner = head): S = Q K^T / 8 (fp32 scores), O = P V into
  // the head's columns of [B, T, D]. Full T x T products (a causal kernel may skip half).
  const int64_t seqs = 8, heads = 4, t = 256, hd = 64, d = heads * hd;
  Problem qk{"attn.QK", false, true, t, t, hd, true, 0.0f, false, 0.125f};
  qk.batch = {seqs, heads, t * 3 * d, hd, t * 3 * d, hd, heads * t * t, t * t};
  qk.lda = qk.ldb = 3 * d;
  Problem pv{"attn.PV", false, false, t, hd, t, false, 0.0f, false};
  pv.batch = {seqs, heads, heads * t * t, t * t, t * 3 * d, hd, t * d, hd};
  pv.ldb = 3 * d;
  pv.ldc = d;
  // Backward runs two products of each forward one's size (dS and dV, dQ and dK): 3 per
  // layer in all, timed here on the forward layouts.
  qk.per_step = pv.per_step = 3 * layers;
  step.push_back(qk);
  step.push_back(pv);
  const char* pass[] = {"fwd", "dX", "dW+="};
  fmt::print("{:<5} {:<9} {:<5} {:>5} {:>5} {:>5} {:>2} {:>2} {:<5} {:>8} {:>8}\n", "dtype",
             "layer", "pass", "M", "N", "K", "tA", "tB", "C", "best", "median");
  for (const Problem& p : problems) {
    const Timing t = timeProblem<T>(ctx, p, repeats);
    printRow(dtype, p, "-", t);
  }
  double flop = 0, seconds = 0;
  for (size_t i = 0; i < step.size(); ++i) {
    const Problem& p = step[i];
    const Timing t = timeProblem<T>(ctx, p, repeats);
    flop += p.per_step * 2.0 * p.m * p.n * p.k * p.batch.outer * p.batch.inner;
    seconds += p.per_step * t.median_s;
    printRow(dtype, p, p.batch.outer > 1 ? "fwd" : pass[i % 3], t);
  }
  fmt::print(
      "{:<5} GEMMs of one training step (4 layers; each product above x its count, medians): "
      "{:.1f} GFLOP in {:.1f} ms = {:.1f} GFLOP/s\n",
      dtype, flop / 1e9, seconds * 1e3, flop / seconds / 1e9);
}

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  int threads = 2, repeats = 10, peak_repeats = 5;
  int64_t square = 2048;
  po::options_description opts("bench_gemm options");
  opts.add_options()("help", "print this help")(
      "threads", po::value(&threads)->default_value(2),
      "OpenMP threads (0: keep OMP_NUM_THREADS / the OpenMP default)")(
      "repeats", po::value(&repeats)->default_value(10), "timed runs per problem")(
      "square", po::value(&square)->default_value(2048), "size of the square products")(
      "peak-repeats", po::value(&peak_repeats)->default_value(5),
      "timed runs per transpose for the peak");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "bench_gemm: error: %s\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::ostringstream help;
    help << opts;
    fmt::print("{}", help.str());
    return 0;
  }
  if (threads < 0 || repeats < 1 || peak_repeats < 1 || square < 1) {
    std::fprintf(stderr,
                 "bench_gemm: error: --threads >= 0, --repeats, --peak-repeats, --square >= 1\n");
    return 2;
  }
  if (threads > 0) omp_set_num_threads(threads);
  const dnnl_version_t* v = dnnl_version();
  fmt::print("bench_gemm: oneDNN {}.{}.{}, {} OpenMP threads; figures in GFLOP/s\n", v->major,
             v->minor, v->patch, omp_get_max_threads());

  GemmContext ctx;
  runSuite<float>(ctx, "fp32", repeats, square);
  runSuite<bf16>(ctx, "bf16", repeats, square);
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16}) {
    const double peak = kdgrid::cpu::measureGemmPeakFlops(ctx, t, square, peak_repeats);
    fmt::print(
        "gemm peak {}: {:.1f} GFLOP/s (measureGemmPeakFlops n={}, best of 4 transposes x {}){}\n",
        kdgrid::dtypeName(t), peak / 1e9, square, peak_repeats,
        t == DType::kF16 ? " [fp16 runs widened to fp32]" : "");
  }
  return 0;
}
