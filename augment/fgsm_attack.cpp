#include "augment/fgsm_attack.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "src/core/check.h"
#include "src/tensor/ops.h"
#include "src/tensor/staging.h"

namespace kdgrid::augment {

namespace {

struct Candidate {
  int64_t pos = 0;
  uint32_t token = 0;
  double gain = 0;  // g_t . (e_new - e_cur)
};

float sign(float g) {
  return g > 0 ? 1.0f : g < 0 ? -1.0f : 0.0f;
}

}  // namespace

FgsmAttacker::FgsmAttacker(Gpt2Stage& model, Runtime& rt, uint32_t vocab_size, float epsilon,
                           int max_flips)
    : model_(model),
      rt_(rt),
      T_(model.config().max_seq),
      C_(model.config().d_model),
      V_(vocab_size),
      epsilon_(epsilon),
      max_flips_(max_flips) {
  KDGRID_CHECK(model.firstStage() && model.lastStage() && model.computeType() == DType::kF32 &&
                   model.layout().find("tok_emb").local_rows >= V_,
               "fgsm needs the whole fp32 model on one rank");
  // The candidates' search reads the embedding table on the host: one staged copy [V, C].
  emb_host_ = toHost<float>(model_.param("tok_emb").rows(0, V_));
  const float* emb = emb_host_.data();
  emb_sq_.resize(V_);
  for (int64_t v = 0; v < V_; ++v) {
    double s = 0;
    for (int64_t c = 0; c < C_; ++c) s += double(emb[v * C_ + c]) * emb[v * C_ + c];
    emb_sq_[v] = static_cast<float>(s);
  }
}

double FgsmAttacker::loss(std::span<const uint32_t> window, std::vector<float>* d_x0) {
  StageActivations acts;
  model_.forward(acts, window.data(), nullptr, 1, T_);
  const float scale = d_x0 ? 1.0f / static_cast<float>(T_) : 0.0f;
  Tensor dout;
  const LossSums sums =
      model_.headForwardBackward(acts, window.data() + 1, scale, d_x0 ? &dout : nullptr);
  if (d_x0) {
    model_.grads().zero();
    Tensor dx0;
    model_.backward(acts, dout, &dx0);
    *d_x0 = toHost<float>(dx0);
  }
  return sums.ce_sum / static_cast<double>(sums.tokens);
}

FgsmWindowResult FgsmAttacker::attack(std::span<const uint32_t> window, float* deltas) {
  KDGRID_CHECK(static_cast<int64_t>(window.size()) == T_ + 1,
               "fgsm window of {} tokens, expected {}", window.size(), T_ + 1);
  FgsmWindowResult result;
  result.window.assign(window.begin(), window.end());
  std::vector<float> g;
  result.clean_loss = loss(window, &g);
  result.adv_loss = result.clean_loss;
  if (deltas) {
    std::fill(deltas, deltas + (T_ + 1) * C_, 0.0f);
    for (int64_t i = 0; i < T_ * C_; ++i) deltas[i] = epsilon_ * sign(g[i]);
  }

  // y_t = e_cur + epsilon * sign(g_t): x'_t without its position embedding, which is the same
  // for every candidate token and so drops out of the distance.
  const Tensor emb = model_.param("tok_emb").rows(0, V_);  // [V, C]
  const float* e = emb_host_.data();
  std::vector<float> y_host(T_ * C_);
  for (int64_t t = 0; t < T_; ++t) {
    const float* cur = e + int64_t(window[t]) * C_;
    for (int64_t c = 0; c < C_; ++c) y_host[t * C_ + c] = cur[c] + epsilon_ * sign(g[t * C_ + c]);
  }
  const Tensor y = fromHost<float>(y_host, {T_, C_}, rt_.backend);
  Tensor dots = rt_.zeros({T_, V_}, DType::kF32);  // e_v . y_t
  ops::linearForward(rt_, dots, y, emb, nullptr);
  const std::vector<float> dots_host = toHost<float>(dots);
  const float* dp = dots_host.data();

  std::vector<Candidate> candidates;
  for (int64_t t = 0; t < T_; ++t) {
    const uint32_t cur = window[t];
    float best = std::numeric_limits<float>::infinity();
    int64_t best_v = -1;
    for (int64_t v = 0; v < V_; ++v) {
      const float d = emb_sq_[v] - 2 * dp[t * V_ + v];
      if (v != cur && d < best) {
        best = d;
        best_v = v;
      }
    }
    if (best_v < 0) continue;  // a vocabulary of one token
    double gain = 0;
    const float* gt = g.data() + t * C_;
    for (int64_t c = 0; c < C_; ++c) gain += double(gt[c]) * (e[best_v * C_ + c] - e[cur * C_ + c]);
    if (gain > 0) candidates.push_back({t, static_cast<uint32_t>(best_v), gain});
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.gain > b.gain; });

  std::vector<uint32_t> trial = result.window;
  int misses = 0;
  for (const Candidate& cand : candidates) {
    if (result.flips >= max_flips_ || misses >= max_flips_) break;
    trial[cand.pos] = cand.token;
    const double l = loss(trial, nullptr);
    ++result.tried;
    if (l > result.adv_loss) {
      result.adv_loss = l;
      result.window[cand.pos] = cand.token;
      ++result.flips;
      misses = 0;
    } else {
      trial[cand.pos] = result.window[cand.pos];
      ++misses;
    }
  }
  return result;
}

}  // namespace kdgrid::augment
