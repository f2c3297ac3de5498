#include "src/inference/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace kdgrid {

uint32_t sampleToken(std::span<const float> logits, const SamplingOptions& s, std::mt19937_64& rng) {
  const int V = static_cast<int>(logits.size());
  if (s.temperature <= 0)
    return static_cast<uint32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  std::vector<int> order(V);
  std::iota(order.begin(), order.end(), 0);
  const int k = s.top_k > 0 ? std::min(s.top_k, V) : V;
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int a, int b) { return logits[a] > logits[b]; });
  order.resize(k);
  std::vector<double> p(k);
  const double max = logits[order[0]];
  double total = 0;
  for (int i = 0; i < k; ++i) total += p[i] = std::exp((logits[order[i]] - max) / s.temperature);
  // Nucleus: the smallest prefix (by probability) whose mass reaches top_p.
  double mass = 0;
  int keep = k;
  for (int i = 0; i < k; ++i) {
    mass += p[i] / total;
    if (mass >= s.top_p) {
      keep = i + 1;
      break;
    }
  }
  std::discrete_distribution<int> pick(p.begin(), p.begin() + keep);
  return static_cast<uint32_t>(order[pick(rng)]);
}

}  // namespace kdgrid
