// Distillation options (DESIGN sections 2 and 8): the teacher (online checkpoint or offline
// top-k shards) and the loss L = alpha * T^2 * D(teacher/T, student/T) + (1 - alpha) * CE.
#pragma once

#include <string>
#include <vector>

#include "kernels/cpu/kl.h"
#include "src/core/options.h"

namespace kdgrid {

struct DistillConfig {
  std::string teacher;         // CKPT: online distillation
  std::string teacher_logits;  // DIR[,DIR...]: offline, one top-k directory per --data source
  std::string loss = "forward_kl";
  double temperature = 2.0;
  double alpha = 0.5;

  // Exactly one of --teacher and --teacher-logits; a known --kd-loss; T > 0; alpha in [0, 1].
  void validate() const;
  cpu::Divergence divergence() const;
  std::vector<std::string> teacherLogitsDirs() const;  // --teacher-logits split at commas
};

// --teacher --teacher-logits --kd-loss --kd-temperature --kd-alpha
po::options_description distillOptions(DistillConfig& config);

// "forward_kl" | "reverse_kl" | "jsd"; OptionError naming --kd-loss otherwise.
cpu::Divergence parseDivergence(const std::string& name);
const char* divergenceName(cpu::Divergence d);

// What the loss needs of the options (the kernels take them as float).
struct KdParams {
  cpu::Divergence divergence = cpu::Divergence::kForwardKl;
  double temperature = 2.0;
  double alpha = 0.5;
  // The combined objective from mean cross-entropy and mean divergence (nats per token).
  double combine(double ce, double kl) const {
    return alpha * temperature * temperature * kl + (1.0 - alpha) * ce;
  }
};
KdParams kdParams(const DistillConfig& config);

}  // namespace kdgrid
