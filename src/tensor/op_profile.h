// Wall time per op, for benchmarks: when a Runtime carries an OpProfile, every op in
// tensor/ops.h adds its duration (and, for GEMMs, its FLOP count) under a label such as
// "linear.fwd 2048x768x256" (M x N x K) or "layernorm.bwd". Without one (the default) an op
// pays one null-pointer test. Labels are built only while profiling.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kdgrid {

class OpProfile {
 public:
  struct Entry {
    std::string label;
    int64_t calls = 0;
    double seconds = 0;
    double flops = 0;  // floating-point operations the op's calls performed (0: not counted)
  };

  void add(const std::string& label, double seconds, double flops);
  // Entries, most time first.
  std::vector<Entry> entries() const;
  double totalSeconds() const;
  void clear() { entries_.clear(); }

 private:
  std::map<std::string, Entry> entries_;
};

// Times its scope into `profile` when that is non-null.
class OpTimer {
 public:
  using Clock = std::chrono::steady_clock;
  // `label` is only called when profiling: a callable returning the label string.
  template <typename LabelFn>
  OpTimer(OpProfile* profile, LabelFn&& label, double flops = 0)
      : profile_(profile), flops_(flops) {
    if (profile_) {
      label_ = label();
      start_ = Clock::now();
    }
  }
  ~OpTimer() {
    if (profile_)
      profile_->add(label_, std::chrono::duration<double>(Clock::now() - start_).count(), flops_);
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  OpProfile* profile_;
  double flops_;
  std::string label_;
  Clock::time_point start_;
};

}  // namespace kdgrid
