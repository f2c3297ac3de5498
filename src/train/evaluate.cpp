#include "src/train/evaluate.h"

#include <algorithm>

#include "src/train/pipeline.h"

namespace kdgrid {

EvalResult evaluateLoss(Gpt2Stage& model, ProcessGrid& grid, const TokenStream& data,
                        int64_t max_tokens, int batch) {
  const int64_t T = model.config().max_seq;
  int64_t windows = static_cast<int64_t>(data.size() / (T + 1));
  int64_t budget = windows * T;  // target tokens available
  if (max_tokens > 0) budget = std::min(budget, max_tokens);
  windows = (budget + T - 1) / T;
  const int dp = grid.dp(), r = grid.dpRank();

  std::vector<uint32_t> window(T + 1), inputs(batch * T), targets(batch * T);
  double ce_sum = 0;
  int64_t tokens = 0;
  // Every dp rank runs the same number of batches (the last ones may be empty), so the
  // tensor-parallel collectives inside the model stay matched.
  const int64_t per_rank = (windows + dp - 1) / dp;
  for (int64_t first = 0; first < per_rank; first += batch) {
    std::fill(targets.begin(), targets.end(), UINT32_MAX);  // ignored unless filled
    std::fill(inputs.begin(), inputs.end(), 0);
    for (int b = 0; b < batch && first + b < per_rank; ++b) {
      const int64_t w = (first + b) * dp + r;  // round-robin over dp ranks
      if (w >= windows) break;
      data.read(uint64_t(w) * (T + 1), T + 1, window.data());
      const int64_t scored = std::min<int64_t>(T, budget - w * T);
      std::copy_n(window.begin(), T, inputs.begin() + b * T);
      std::copy_n(window.begin() + 1, scored, targets.begin() + b * T);
    }
    LossSums sums = pipelineForward(model, grid.ppComm(), {inputs.data(), targets.data(), batch, T});
    ce_sum += sums.ce_sum;
    tokens += sums.tokens;
  }
  // Only the last stage scored; sum over dp, then share along the pipeline.
  double totals[2] = {ce_sum, static_cast<double>(tokens)};
  grid.dpComm().allReduceSum(totals, 2);
  grid.ppComm().allReduceSum(totals, 2);
  return {totals[1] > 0 ? totals[0] / totals[1] : 0.0, static_cast<int64_t>(totals[1])};
}

}  // namespace kdgrid
