// Activation memory and throughput of --recompute none | selective | full, in process, at a
// size where activations dominate (default: 4 layers, d_model 256, 4 heads, d_ff 1024, vocab
// 4096, seq 1024, batch 8, fp32). One model per mode; their steps are interleaved (none,
// selective, full, none, ...) so machine noise hits the modes alike.
//
// Activation memory = the high-water mark, over a step, of the bytes alive in tensors from
// the runtime's TensorPool (tensor_pool.h): every activation the forward keeps, the
// recomputed ones, the backward's activation gradients and the LM head's logits chunk. The
// fp32 weights, gradients and AdamW moments (not from the pool) are the same in every mode
// and reported apart.
//
//   OMP_NUM_THREADS=2 build/bench/bench_recompute [--steps 5] [--max-seq 1024] [--precision fp32]
#include <omp.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_cli.h"
#include "bench/train_step_harness.h"
#include "src/core/mpi_session.h"

namespace po = boost::program_options;
using namespace kdgrid;

int main(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  ModelConfig mc = bench::benchModel();
  mc.max_seq = 1024;  // long sequences: activations dominate memory
  int64_t batch = 8;
  int steps = 5, warmup = 1;
  std::string precision = "fp32";
  po::options_description opts("bench_recompute options");
  opts.add_options()("help,h", "print this help");
  bench::addModelOptions(opts, mc);
  opts.add_options()("batch-size", po::value(&batch)->default_value(8), "sequences per step")(
      "steps", po::value(&steps)->default_value(5), "timed steps per mode")(
      "warmup", po::value(&warmup)->default_value(1), "untimed steps first")(
      "precision", po::value(&precision)->default_value("fp32"), "fp32 | bf16");
  po::variables_map vm;
  if (const auto code = bench::parseOptions(argc, argv, opts, vm, "bench_recompute")) return *code;
  if (precision != "fp32" && precision != "bf16") {
    std::fprintf(stderr, "bench_recompute: --precision must be fp32 or bf16\n");
    return 2;
  }
  try {
    mc.validate();
    GridConfig gc;
    resolveGridFor(gc, 1, mc);
    ProcessGrid grid(gc);
    const DType dtype = precision == "bf16" ? DType::kBF16 : DType::kF32;
    const std::vector<Recompute> modes = {Recompute::kNone, Recompute::kSelective, Recompute::kFull};
    std::vector<std::unique_ptr<bench::TrainStepHarness>> harness;
    for (Recompute m : modes) {
      bench::HarnessConfig hc{mc, batch, dtype, m, 0};
      harness.push_back(std::make_unique<bench::TrainStepHarness>(hc, grid));
    }
    const double tokens = double(batch) * mc.max_seq;
    std::printf("recompute: %s, batch %lld, %s, %d threads\n", mc.summary().c_str(),
                static_cast<long long>(batch), precision.c_str(), omp_get_max_threads());
    const size_t n_params = harness[0]->model().layout().totalElements();
    std::printf("weights + gradients + AdamW moments (fp32, every mode): %.1f MiB\n",
                4.0 * 4 * n_params / (1 << 20));

    for (int w = 0; w < warmup; ++w)
      for (auto& h : harness) h->step();
    std::vector<std::vector<double>> times(modes.size());
    std::vector<size_t> peak(modes.size(), 0);
    for (int s = 0; s < steps; ++s) {
      for (size_t i = 0; i < modes.size(); ++i) {
        TensorPool& pool = harness[i]->runtime().pool;
        pool.resetPeak();
        times[i].push_back(harness[i]->step().total);
        peak[i] = std::max(peak[i], pool.peakBytes());
      }
    }
    std::printf("\n%-10s %14s %11s %13s %12s %13s\n", "recompute", "act. peak MiB", "vs none",
                "median step s", "tokens/s", "throughput");
    const double base_mem = static_cast<double>(peak[0]);
    const double base_tps = tokens / bench::median(times[0]);
    for (size_t i = 0; i < modes.size(); ++i) {
      const double tps = tokens / bench::median(times[i]);
      std::printf("%-10s %14.1f %10.1f%% %13.3f %12.0f %12.1f%%\n", enumWord(modes[i], kRecomputeWords),
                  peak[i] / double(1 << 20), 100.0 * peak[i] / base_mem, bench::median(times[i]),
                  tps, 100.0 * tps / base_tps);
    }
    std::printf(
        "\nfull vs none: activation memory %+.1f%% (goal: -60%% or less), throughput "
        "%+.1f%% (goal: -35%% or better); %d steps per mode, medians\n",
        100.0 * (peak[2] / base_mem - 1), 100.0 * (tokens / bench::median(times[2]) / base_tps - 1),
        steps);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_recompute: %s\n", e.what());
    return 1;
  }
  return 0;
}
