// Training options (DESIGN section 2) and their command-line group.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "src/core/dtype.h"
#include "src/core/options.h"
#include "src/model/recompute.h"

namespace kdgrid {

// --on-nan: what a non-finite loss or gradient norm does in fp32/bf16 (fp16 always skips and
// halves its loss scale): kSkip the update (weights and AdamW state unchanged, a warning,
// `skipped` in metrics) or kStop (exit 1 naming the step, nothing saved).
enum class OnNan : uint8_t { kSkip, kStop };
inline constexpr EnumWord<OnNan> kOnNanWords[] = {{OnNan::kSkip, "skip"}, {OnNan::kStop, "stop"}};
void validate(boost::any& out, const std::vector<std::string>& args, OnNan*, int);
std::ostream& operator<<(std::ostream& os, OnNan on_nan);

struct TrainConfig {
  std::string run_dir;
  std::string data;      // DIR[:WEIGHT],...
  std::string val_data;  // DIR (optional)
  int64_t steps = 100;   // total optimizer steps, counted across resumes
  int batch_size = 8;    // sequences per micro-batch per data-parallel rank
  int grad_accum = 1;
  double lr = 3e-4;
  double min_lr = -1;    // < 0: lr / 10
  int64_t warmup_steps = 0;
  double weight_decay = 0.1;
  double grad_clip = 1.0;  // 0 = off
  uint64_t seed = 0;
  DType precision = DType::kF32;    // compute dtype: fp32 | bf16 | fp16
  Recompute recompute = Recompute::kNone;
  int64_t eval_every = 0;          // 0 = only at the end when --val-data is given
  int64_t val_tokens = 0;          // 0 = the whole validation set
  int64_t save_every = 0;          // 0 = only after the last step
  int keep_checkpoints = 3;
  bool no_resume = false;
  // Online adversarial training (train/adversarial.h): 0 = off.
  double adv_epsilon = 0;  // L-inf radius of the embedding perturbation
  double adv_weight = 0.5; // loss = (1 - W) clean + W adversarial
  OnNan on_nan = OnNan::kStop;

  double minLr() const { return min_lr < 0 ? lr / 10 : min_lr; }
  void validate() const;
};

po::options_description trainOptions(TrainConfig& config);

// Learning rate at optimizer step `step` (0-based): linear warmup over warmup_steps, then
// cosine from lr to min_lr at `steps`. A warmup longer than the run never finishes.
double learningRate(const TrainConfig& config, int64_t step);

}  // namespace kdgrid
