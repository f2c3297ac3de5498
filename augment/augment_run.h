// The rank-level driver of a text augmentation (`kdgrid augment` for text methods).
//
// Every rank plans the same way (shard_plan.h) and augments its own input shards in order with
// the method's TextAugmenter, one shard ahead. Output shards are written as NAME.part (no
// reader takes them: only *.h5 files are shards); once every rank has finished without error,
// each renames its .part files to their names. When any rank fails, every rank removes its
// .part files and exits with the first failing rank's error, so a failed run leaves no output
// shards. An input shard none of whose variants is kept (or with no documents) gives an output
// shard with num_docs 0 (empty provenance columns, the method codes and parameters), so the
// output names match the input's one for one; prepare and the loader take such shards. An output directory that already holds shards is
// refused; .part files left by an interrupted run are removed.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "augment/method.h"
#include "augment/text_augmenter.h"

namespace kdgrid::augment {

struct AugmentRunConfig {
  std::string input;  // directory of kdgrid-text shards
  std::string out;    // directory for the output shards (created)
  Method method = Method::kPerturb;
  // Seed and method parameters: root attributes of every output shard.
  std::map<std::string, std::string> params;
};

struct AugmentSummary {
  AugmentStats stats;  // summed over ranks (on every rank)
  double seconds = 0;  // slowest rank, from planning to the last rename
};

// Collective over MPI_COMM_WORLD. `make` builds the method on ranks that have shards.
AugmentSummary runTextAugmentation(const AugmentRunConfig& config,
                                   const std::function<std::unique_ptr<TextAugmenter>()>& make);

}  // namespace kdgrid::augment
