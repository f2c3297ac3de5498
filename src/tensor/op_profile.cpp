#include "src/tensor/op_profile.h"

#include <algorithm>

namespace kdgrid {

void OpProfile::add(const std::string& label, double seconds, double flops) {
  Entry& e = entries_[label];
  e.label = label;
  e.calls += 1;
  e.seconds += seconds;
  e.flops += flops;
}

std::vector<OpProfile::Entry> OpProfile::entries() const {
  std::vector<Entry> out;
  for (const auto& [label, e] : entries_) out.push_back(e);
  std::sort(out.begin(), out.end(),
            [](const Entry& a, const Entry& b) { return a.seconds > b.seconds; });
  return out;
}

double OpProfile::totalSeconds() const {
  double s = 0;
  for (const auto& [label, e] : entries_) s += e.seconds;
  return s;
}

}  // namespace kdgrid
