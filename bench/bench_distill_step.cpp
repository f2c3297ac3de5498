// Online distillation overhead, in process: on the same synthetic batch, time (1) a student
// training step (cross-entropy), (2) the teacher's forward with its LM-head logits, and (3) an
// online distillation step (OnlineDistillHead: teacher forward + student step + KL loss), and
// print distill / (train + teacher forward): the goal is <= 1.10, i.e. distillation costs
// little beyond the two passes it cannot avoid. The three are run in rotating order within
// each repeat (a shared machine slows all alike) and medians are reported; then a per-op
// profile of each shows where any difference goes.
//
// Models (random weights; timing does not depend on them): teacher 4 layers d256 4 heads,
// student 2 layers d128 4 heads, seq 128, batch 8, vocab 4096 by default.
//
//   OMP_NUM_THREADS=2 build/bench/bench_distill_step [--reps 15] [--precision fp32|bf16]
#include <omp.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_cli.h"
#include "bench/train_step_harness.h"
#include "src/core/mpi_session.h"
#include "src/distill/kd_config.h"
#include "src/distill/online_head.h"
#include "src/distill/teacher.h"
#include "src/model/params.h"

namespace po = boost::program_options;
using namespace kdgrid;

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A frozen, randomly initialised teacher stage (as loadTeacher builds it: forward only,
// full recompute so that nothing but block inputs lives during its forward).
std::unique_ptr<Gpt2Stage> makeTeacher(const ModelConfig& config, ProcessGrid& grid, DType compute,
                                       Runtime& rt) {
  auto stage = std::make_unique<Gpt2Stage>(config, 1, 0, grid.tpComm(), compute, Recompute::kFull,
                                           rt);
  initializeParameters(stage->layout(), 1, stage->params().data<float>());
  stage->syncComputeWeights();
  return stage;
}

// The teacher's share of a distillation step on its own: the forward over the batch and the
// logits of every row, in chunks as the distillation head forms them (one chunk of up to 1024
// rows at vocabulary 4096).
class TeacherForward {
 public:
  explicit TeacherForward(Gpt2Stage& teacher) : teacher_(teacher) {}
  void run(const MicroBatch& mb) {
    StageActivations acts;
    teacher_.forward(acts, mb.inputs, nullptr, mb.B, mb.T);
    acts.blocks.clear();
    const int64_t N = mb.B * mb.T, chunk = 1024;
    if (!logits_.defined())
      logits_ = Tensor::zeros({std::min(N, chunk), teacher_.vocabLocal()}, DType::kF32);
    for (int64_t r0 = 0; r0 < N; r0 += chunk) {
      Tensor lg = logits_.rows(0, std::min(chunk, N - r0));
      teacher_.headLogits(acts, r0, lg);
    }
  }

 private:
  Gpt2Stage& teacher_;
  Tensor logits_;
};

// Per-op seconds of a profile, by label.
std::map<std::string, double> opSeconds(const OpProfile& p) {
  std::map<std::string, double> out;
  for (const OpProfile::Entry& e : p.entries()) out[e.label] = e.seconds;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  ModelConfig student, teacher;
  int64_t batch = 8;
  int reps = 15, warmup = 2, profile_steps = 3;
  std::string precision = "fp32";
  cpu::Divergence loss = cpu::Divergence::kForwardKl;
  double temperature = 2.0, alpha = 0.5;
  po::options_description opts("bench_distill_step options");
  opts.add_options()("help,h", "print this help")(
      "teacher-layers", po::value(&teacher.n_layer)->default_value(4), "teacher blocks")(
      "teacher-d-model", po::value(&teacher.d_model)->default_value(256), "teacher width")(
      "teacher-heads", po::value(&teacher.n_head)->default_value(4), "teacher heads")(
      "student-layers", po::value(&student.n_layer)->default_value(2), "student blocks")(
      "student-d-model", po::value(&student.d_model)->default_value(128), "student width")(
      "student-heads", po::value(&student.n_head)->default_value(4), "student heads")(
      "vocab-size", po::value(&student.vocab_size)->default_value(4096), "vocabulary")(
      "max-seq", po::value(&student.max_seq)->default_value(128), "sequence length")(
      "batch-size", po::value(&batch)->default_value(8), "sequences per step")(
      "reps", po::value(&reps)->default_value(15), "timed repeats of the three")(
      "warmup", po::value(&warmup)->default_value(2), "untimed repeats first")(
      "profile-steps", po::value(&profile_steps)->default_value(3), "profiled repeats after")(
      "precision", po::value(&precision)->default_value("fp32"), "fp32 | bf16")(
      "kd-loss", enumValue(&loss)->default_value(loss), "forward_kl | reverse_kl | jsd")(
      "kd-temperature", po::value(&temperature)->default_value(2.0), "distillation temperature")(
      "kd-alpha", po::value(&alpha)->default_value(0.5), "weight of the divergence");
  po::variables_map vm;
  if (const auto code = bench::parseOptions(argc, argv, opts, vm, "bench_distill_step"))
    return *code;
  try {
    KDGRID_INPUT_CHECK(precision == "fp32" || precision == "bf16",
                       "--precision must be fp32 or bf16");
    const DType compute = precision == "bf16" ? DType::kBF16 : DType::kF32;
    student.d_ff = 4 * student.d_model;
    teacher.d_ff = 4 * teacher.d_model;
    teacher.vocab_size = student.vocab_size;
    teacher.max_seq = student.max_seq;
    student.validate();
    teacher.validate();
    GridConfig gc;
    resolveGridFor(gc, 1, student);
    ProcessGrid grid(gc);

    bench::TrainStepHarness harness({student, batch, compute, Recompute::kNone, 0}, grid);
    Runtime& rt = harness.runtime();
    // The distillation head's teacher and a separate identical one for the forward alone.
    Teacher head_teacher;
    head_teacher.config = teacher;
    head_teacher.stage = makeTeacher(teacher, grid, compute, rt);
    const KdParams kd{loss, temperature, alpha};
    OnlineDistillHead head(harness.model(), std::move(head_teacher), grid.ppComm(), grid.tpComm(),
                           kd);
    std::unique_ptr<Gpt2Stage> teacher_stage = makeTeacher(teacher, grid, compute, rt);
    TeacherForward teacher_forward(*teacher_stage);

    std::printf("distill step: teacher %s, student %s, batch %lld, %s, %s T=%.1f alpha=%.2f, "
                "%d threads\n",
                teacher.summary().c_str(), student.summary().c_str(),
                static_cast<long long>(batch), precision.c_str(), divergenceName(loss), temperature, alpha,
                omp_get_max_threads());
    // 0 = student train step, 1 = teacher forward, 2 = distillation step.
    auto run = [&](int which) {
      const auto t0 = Clock::now();
      if (which == 0) harness.stepOnBatch(nullptr);
      if (which == 1) teacher_forward.run(harness.batch());
      if (which == 2) harness.stepOnBatch(&head);
      return secondsSince(t0);
    };
    std::vector<double> times[3];
    for (int r = 0; r < warmup + reps; ++r) {
      harness.drawTokens();
      for (int k = 0; k < 3; ++k) {
        const int which = (r + k) % 3;  // rotate the order across repeats
        const double s = run(which);
        if (r >= warmup) times[which].push_back(s);
      }
    }
    const double train = bench::median(times[0]), fwd = bench::median(times[1]),
                 distill = bench::median(times[2]);
    const double tokens = double(batch) * student.max_seq;
    const char* names[3] = {"student train step", "teacher forward+logits", "distill step"};
    for (int k = 0; k < 3; ++k)
      std::printf("  %-24s median %8.2f ms  p90 %8.2f ms  (%d repeats; %.0f tokens/s)\n", names[k],
                  bench::median(times[k]) * 1e3, bench::quantile(times[k], 0.9) * 1e3, reps,
                  tokens / bench::median(times[k]));
    // The same ratio per repeat (each repeat's three runs are adjacent in time), then its median.
    std::vector<double> per_rep;
    for (int r = 0; r < reps; ++r) per_rep.push_back(times[2][r] / (times[0][r] + times[1][r]));
    std::printf("distill / (train + teacher forward) = %.3f (of medians); median of per-repeat "
                "ratios %.3f; goal <= 1.10\n",
                distill / (train + fwd), bench::median(per_rep));

    if (profile_steps > 0) {
      OpProfile separate, together;
      std::vector<double> sep_s, tog_s;
      for (int r = 0; r < profile_steps; ++r) {
        harness.drawTokens();
        rt.profile = &separate;
        sep_s.push_back(run(0) + run(1));
        rt.profile = &together;
        tog_s.push_back(run(2));
        rt.profile = nullptr;
      }
      auto mean = [](const std::vector<double>& v) {
        double s = 0;
        for (double x : v) s += x;
        return s / v.size();
      };
      std::printf("\ntrain step + teacher forward, per-op (%d profiled repeats):\n", profile_steps);
      bench::printOpProfile(separate, profile_steps, mean(sep_s));
      std::printf("\ndistill step, per-op (%d profiled repeats):\n", profile_steps);
      bench::printOpProfile(together, profile_steps, mean(tog_s));
      // Where the difference goes: ops whose time differs by more than 0.2 ms per step.
      std::map<std::string, double> a = opSeconds(separate), b = opSeconds(together);
      for (const auto& [label, s] : a) b.try_emplace(label, 0.0);
      std::printf("\nops differing by > 0.2 ms/step (distill - separate):\n");
      for (const auto& [label, s] : b) {
        const double d = (s - (a.count(label) ? a[label] : 0.0)) / profile_steps * 1e3;
        if (std::fabs(d) > 0.2) std::printf("  %-34s %+8.2f ms\n", label.c_str(), d);
      }
      std::printf("  outside ops: separate %.2f ms, distill %.2f ms\n",
                  (mean(sep_s) - separate.totalSeconds() / profile_steps) * 1e3,
                  (mean(tog_s) - together.totalSeconds() / profile_steps) * 1e3);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_distill_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
