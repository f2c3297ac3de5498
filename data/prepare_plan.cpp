#include "data/prepare_plan.h"

#include <algorithm>
#include <cmath>

namespace kdgrid {

uint64_t validationPeriod(double val_fraction) {
  if (!(val_fraction > 0.0 && val_fraction <= 0.5)) return 0;
  // Capped so the conversion is defined; such a period simply leaves validation empty.
  return static_cast<uint64_t>(std::llround(std::min(1.0 / val_fraction, 1e18)));
}

std::vector<uint64_t> packConsecutive(std::span<const uint64_t> sizes, uint64_t target) {
  std::vector<uint64_t> bounds = {0};
  uint64_t total = 0;
  for (uint64_t i = 0; i < sizes.size(); ++i) {
    total += sizes[i];
    if (total >= target || i + 1 == sizes.size()) {
      bounds.push_back(i + 1);
      total = 0;
    }
  }
  return bounds;
}

}  // namespace kdgrid
