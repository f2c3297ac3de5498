// The rank-level driver of `kdgrid augment --method fgsm` (DESIGN sections 2 and 6).
//
// Windows are eval's: the input directory's tokens concatenated in file-name order, cut into
// consecutive windows of max_seq + 1 tokens (the checkpoint's max_seq), the incomplete tail
// dropped. A window belongs to the input shard holding its first token (it may run on into the
// next shard); every rank runs the whole model (grid 1x1x1 per rank) over the windows of the
// input shards it owns (shard_plan.h) and writes one output token shard per such input shard,
// under the input's name (a shard that holds no window's first token gives a shard without
// documents): each adversarial window whole as one document, in order, so `eval`
// over the output scores exactly the adversarial versions of the windows `eval` scores over the
// input. Provenance: source_doc (the input document holding the window's first token, counted
// across the input shards), method = fgsm, source_token_offset (the window's start in the
// concatenated input); root attributes epsilon, max_flips, seed, checkpoint. With save_deltas,
// /fgsm/deltas float16 [n_tokens, d_model] holds epsilon * sign(g) per token (0 on each window's
// last token). Output is written as .part files and renamed when every rank succeeded
// (output_dir.h).
#pragma once

#include <cstdint>
#include <string>

namespace kdgrid::augment {

struct FgsmRunConfig {
  std::string input;       // directory of kdgrid-tokens shards
  std::string out;         // directory for the output shards (created)
  std::string checkpoint;  // step or run directory
  double epsilon = 0.5;    // L-inf radius in embedding space
  int max_flips = 4;       // per window
  uint64_t seed = 0;       // recorded; the attack itself is deterministic
  bool save_deltas = false;
  std::string device = "cpu";  // backend (src/tensor/backends.h)
};

struct FgsmSummary {
  uint64_t shards_written = 0;
  uint64_t windows = 0;
  uint64_t flips = 0;         // summed over windows
  uint64_t tried = 0;         // candidate flips verified by a forward pass
  double clean_loss = 0;      // mean over windows of the source windows' loss, nats
  double adv_loss = 0;        // the same for the adversarial windows
  double seconds = 0;         // slowest rank, from planning to the last rename
  double attack_seconds = 0;  // slowest rank, attacks only (sequences/s)
};

// Collective over MPI_COMM_WORLD; every rank returns the same summary.
FgsmSummary runFgsmAugmentation(const FgsmRunConfig& config);

}  // namespace kdgrid::augment
