// Training-step throughput of the engine, in process: the bench model (by default 4 layers,
// d_model 256, 4 heads, d_ff 1024, vocab 4096, seq 256, batch 8) stepped through the real
// path (train_step_harness.h) in fp32 and bf16, steps of the two precisions interleaved so
// that a noisy (shared) machine slows both alike. Prints per precision: median step time,
// tokens/s, achieved model FLOP/s (FLOP count: train_step_harness.h) as a fraction of the
// GEMM peak measured in this process (cpu::measureGemmPeakFlops, best of before and after the
// steps), the step's phases, and a per-op breakdown of a few extra profiled steps.
//
//   OMP_NUM_THREADS=2 build/bench/bench_train_step [--steps 10] [--warmup 2] [--precision both]
#include <omp.h>

#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_cli.h"
#include "bench/train_step_harness.h"
#include "kernels/cpu/gemm.h"
#include "src/core/mpi_session.h"

namespace po = boost::program_options;
using namespace kdgrid;

namespace {

struct Result {
  std::vector<double> total, fwd_bwd, zero, norm, opt;
};

}  // namespace

int main(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  ModelConfig mc = bench::benchModel();
  int64_t batch = 8;
  int steps = 10, warmup = 2, profile_steps = 3;
  std::string precision = "both";
  Recompute recompute = Recompute::kNone;
  po::options_description opts("bench_train_step options");
  opts.add_options()("help,h", "print this help");
  bench::addModelOptions(opts, mc);
  opts.add_options()("batch-size", po::value(&batch)->default_value(8), "sequences per step")(
      "steps", po::value(&steps)->default_value(10), "timed steps per precision")(
      "warmup", po::value(&warmup)->default_value(2), "untimed steps first")(
      "profile-steps", po::value(&profile_steps)->default_value(3), "extra steps with op timers")(
      "precision", po::value(&precision)->default_value("both"), "fp32 | bf16 | both")(
      "recompute", enumValue(&recompute)->default_value(recompute), "none | selective | full")(
      "no-peak", "skip the GEMM peak measurement (profiling runs)");
  po::variables_map vm;
  if (const auto code = bench::parseOptions(argc, argv, opts, vm, "bench_train_step")) return *code;
  try {
    mc.validate();
    GridConfig gc;
    resolveGridFor(gc, 1, mc);
    ProcessGrid grid(gc);
    std::vector<DType> types;
    if (precision != "bf16") types.push_back(DType::kF32);
    if (precision != "fp32") types.push_back(DType::kBF16);

    std::vector<std::unique_ptr<bench::TrainStepHarness>> harness;
    for (DType t : types) {
      bench::HarnessConfig hc{mc, batch, t, recompute, 0};
      harness.push_back(std::make_unique<bench::TrainStepHarness>(hc, grid));
    }
    const double flops = bench::trainStepFlops(mc, batch);
    const double tokens = double(batch) * mc.max_seq;
    std::printf("train step: %s, batch %lld, recompute %s, %d threads\n", mc.summary().c_str(),
                static_cast<long long>(batch), enumWord(recompute, kRecomputeWords), omp_get_max_threads());
    std::printf("model FLOPs per step: %.2f GFLOP (%.2f MFLOP per token)\n", flops * 1e-9,
                flops / tokens * 1e-6);

    const bool measure_peak = !vm.count("no-peak");
    std::vector<double> peak(types.size(), 0.0);
    for (size_t i = 0; i < types.size() && measure_peak; ++i)
      peak[i] = cpu::measureGemmPeakFlops(harness[i]->runtime().backend.gemm(), types[i]);
    for (int w = 0; w < warmup; ++w)
      for (auto& h : harness) h->step();
    std::vector<Result> res(types.size());
    for (int s = 0; s < steps; ++s) {
      for (size_t i = 0; i < types.size(); ++i) {
        const bench::StepTimes t = harness[i]->step();
        res[i].total.push_back(t.total);
        res[i].fwd_bwd.push_back(t.forward_backward);
        res[i].zero.push_back(t.zero_grads);
        res[i].norm.push_back(t.grad_norm);
        res[i].opt.push_back(t.optimizer);
      }
    }
    for (size_t i = 0; i < types.size() && measure_peak; ++i)
      peak[i] = std::max(peak[i], cpu::measureGemmPeakFlops(harness[i]->runtime().backend.gemm(), types[i]));

    for (size_t i = 0; i < types.size(); ++i) {
      const Result& r = res[i];
      const double med = bench::median(r.total);
      const double best = *std::min_element(r.total.begin(), r.total.end());
      std::printf("\n%s: ", std::string(dtypeName(types[i])).c_str());
      if (measure_peak)
        std::printf("GEMM peak %.1f GFLOP/s (2048^3, this process)\n", peak[i] * 1e-9);
      else
        std::printf("GEMM peak not measured\n");
      std::printf("  step median %.1f ms (best %.1f, %d steps): %.0f tokens/s, %.1f GFLOP/s",
                  med * 1e3, best * 1e3, steps, tokens / med, flops / med * 1e-9);
      if (measure_peak)
        std::printf(" = %.1f%% of peak (best step %.1f%%)", 100 * flops / med / peak[i],
                    100 * flops / best / peak[i]);
      std::printf("; loss %.4f\n", harness[i]->lastLoss());
      std::printf(
          "  phases (median ms): zero grads %.2f, forward+backward %.2f, grad norm %.2f, "
          "AdamW %.2f\n",
          bench::median(r.zero) * 1e3, bench::median(r.fwd_bwd) * 1e3, bench::median(r.norm) * 1e3,
          bench::median(r.opt) * 1e3);
    }
    for (size_t i = 0; i < types.size() && profile_steps > 0; ++i) {
      OpProfile profile;
      harness[i]->runtime().profile = &profile;
      std::vector<double> t;
      for (int s = 0; s < profile_steps; ++s) t.push_back(harness[i]->step().total);
      harness[i]->runtime().profile = nullptr;
      double sum = 0;
      for (double x : t) sum += x;
      std::printf("\n%s per-op breakdown (%d profiled steps, mean step %.1f ms):\n",
                  std::string(dtypeName(types[i])).c_str(), profile_steps,
                  sum / profile_steps * 1e3);
      bench::printOpProfile(profile, profile_steps, sum / profile_steps);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
