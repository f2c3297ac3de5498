#include "src/distill/kd_config.h"

#include <cmath>
#include <ostream>

namespace kdgrid {

po::options_description distillOptions(DistillConfig& c) {
  po::options_description o("Distillation");
  // clang-format off
  o.add_options()
    ("teacher", po::value(&c.teacher)->value_name("CKPT"),
     "online: the teacher checkpoint (step or run directory), run alongside the student")
    ("teacher-logits", po::value(&c.teacher_logits)->value_name("DIR[,DIR...]"),
     "offline: kdgrid-teacher-topk shards from `kdgrid teacher-logits`, one directory per "
     "--data source")
    ("kd-loss", enumValue(&c.loss)->default_value(c.loss), "forward_kl | reverse_kl | jsd")
    ("kd-temperature", valueWithDefault(&c.temperature),
     "softmax temperature T of both distributions (the divergence is scaled by T^2)")
    ("kd-alpha", valueWithDefault(&c.alpha),
     "weight of the divergence; 1 - alpha weighs the cross-entropy on the labels");
  // clang-format on
  return o;
}

void DistillConfig::validate() const {
  KDGRID_OPTION_CHECK(teacher.empty() != teacher_logits.empty(),
                      "give exactly one of --teacher CKPT (online) and --teacher-logits DIR "
                      "(offline)");
  KDGRID_OPTION_CHECK(temperature > 0 && std::isfinite(temperature),
                      "--kd-temperature must be a positive number (got {})", temperature);
  KDGRID_OPTION_CHECK(alpha >= 0 && alpha <= 1, "--kd-alpha must be in [0, 1] (got {})", alpha);
  for (const std::string& dir : teacherLogitsDirs())
    KDGRID_OPTION_CHECK(!dir.empty(), "--teacher-logits: empty directory name in '{}'",
                        teacher_logits);
}

std::vector<std::string> DistillConfig::teacherLogitsDirs() const {
  std::vector<std::string> dirs;
  if (teacher_logits.empty()) return dirs;
  size_t begin = 0;
  for (;;) {
    const size_t comma = teacher_logits.find(',', begin);
    dirs.push_back(teacher_logits.substr(begin, comma - begin));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return dirs;
}

namespace cpu {

void validate(boost::any& out, const std::vector<std::string>& args, Divergence*, int) {
  parseEnumWord(out, args, kDivergenceWords);
}

std::ostream& operator<<(std::ostream& os, Divergence divergence) {
  return os << enumWord(divergence, kDivergenceWords);
}

}  // namespace cpu

const char* divergenceName(cpu::Divergence d) { return enumWord(d, cpu::kDivergenceWords); }

KdParams kdParams(const DistillConfig& c) {
  return {c.loss, c.temperature, c.alpha};
}

}  // namespace kdgrid
