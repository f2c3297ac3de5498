// FGSM/HotFlip on one window of tokens (DESIGN sections 2 and 6: `augment --method fgsm`).
//
// A window holds max_seq + 1 tokens: inputs are the first max_seq, targets the next token at
// each position, and its loss is the mean cross-entropy over its max_seq targets (what `eval`
// scores). The attack:
//   1. g = d loss / d x0 [T, C], x0 = tok_emb[ids] + pos_emb (the embedding output);
//   2. x' = x0 + epsilon * sign(g); at each input position t the candidate token is the row of
//      tok_emb (real vocabulary, ids < vocab_size of the shards) nearest to x'_t - pos_emb[t]
//      in L2, EXCLUDING the current token (otherwise a small epsilon never proposes a flip):
//      argmin_v ||e_v||^2 - 2 e_v . (e_cur + epsilon * sign(g_t)), one [T, C] x [C, V] GEMM;
//   3. candidates are ranked by their first-order gain g_t . (e_new - e_cur) (HotFlip); those
//      with a positive gain are tried in that order, each on top of the flips kept so far, and
//      kept only when a forward pass shows the window's loss rises (the flipped token is also
//      the previous position's target, as eval will score it). The search stops after
//      max_flips kept flips, after max_flips candidates in a row that did not raise the loss,
//      or when the candidates run out. The last token of a window (a target only) never flips.
// The model must run on one rank (pp = tp = 1) in fp32; its parameter gradients are zeroed and
// overwritten.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "src/model/gpt2.h"
#include "src/tensor/runtime.h"

namespace kdgrid::augment {

struct FgsmWindowResult {
  std::vector<uint32_t> window;  // [T + 1] adversarial tokens
  int flips = 0;                 // positions that differ from the source window
  int tried = 0;                 // candidates verified with a forward pass
  double clean_loss = 0;         // mean CE of the source window, nats
  double adv_loss = 0;           // mean CE of `window`, nats (>= clean_loss)
};

class FgsmAttacker {
 public:
  // vocab_size: the shards' vocabulary (ids >= it are padding rows and never chosen).
  FgsmAttacker(Gpt2Stage& model, Runtime& rt, uint32_t vocab_size, float epsilon, int max_flips);

  // `window`: T + 1 ids, T = the model's max_seq. `deltas` (optional, [(T + 1) * C]) receives
  // epsilon * sign(g) per position (0 for the last position, which is no input).
  FgsmWindowResult attack(std::span<const uint32_t> window, float* deltas);

 private:
  // Mean CE of a window; with `d_x0` also runs backward and stores d loss / d x0 [T, C].
  double loss(std::span<const uint32_t> window, std::vector<float>* d_x0);

  Gpt2Stage& model_;
  Runtime& rt_;
  int64_t T_, C_, V_;
  float epsilon_;
  int max_flips_;
  std::vector<float> emb_host_;  // tok_emb rows [V, C], staged once
  std::vector<float> emb_sq_;  // [V] ||tok_emb[v]||^2
};

}  // namespace kdgrid::augment
