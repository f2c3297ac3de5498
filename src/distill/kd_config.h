// Distillation options (DESIGN sections 2 and 8): the teacher (online checkpoint or offline
// top-k shards) and the loss L = alpha * T^2 * D(teacher/T, student/T) + (1 - alpha) * CE.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "kernels/cpu/kl.h"
#include "src/core/options.h"

namespace kdgrid {

// --kd-loss: forward_kl | reverse_kl | jsd, an enum option (src/core/options.h) in the kernels'
// namespace, where Boost finds its validate and operator<<.
namespace cpu {
inline constexpr EnumWord<Divergence> kDivergenceWords[] = {{Divergence::kForwardKl, "forward_kl"},
                                                           {Divergence::kReverseKl, "reverse_kl"},
                                                           {Divergence::kJsd, "jsd"}};
void validate(boost::any& out, const std::vector<std::string>& args, Divergence*, int);
std::ostream& operator<<(std::ostream& os, Divergence divergence);
}  // namespace cpu

struct DistillConfig {
  std::string teacher;         // CKPT: online distillation
  std::string teacher_logits;  // DIR[,DIR...]: offline, one top-k directory per --data source
  cpu::Divergence loss = cpu::Divergence::kForwardKl;  // --kd-loss
  double temperature = 2.0;
  double alpha = 0.5;

  // Exactly one of --teacher and --teacher-logits; T > 0; alpha in [0, 1].
  void validate() const;
  std::vector<std::string> teacherLogitsDirs() const;  // --teacher-logits split at commas
};

// --teacher --teacher-logits --kd-loss --kd-temperature --kd-alpha
po::options_description distillOptions(DistillConfig& config);

// The --kd-loss word of `d` ("forward_kl", ...), for logs.
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
