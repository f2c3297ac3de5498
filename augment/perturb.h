// Perturbation as a text method: `num_aug` variants of every document, each made by running
// the EDA operations (eda.h) over every sentence of the document (segments.h). Variant v of
// the document with global index d draws from KeyedRng(seed, d, v), sentence after sentence, so
// the output is the same on any number of ranks and threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "augment/eda.h"
#include "augment/text_augmenter.h"
#include "augment/wordnet.h"

namespace kdgrid::augment {

struct PerturbConfig {
  EdaRates rates;
  int num_aug = 4;  // variants per document
  uint64_t seed = 0;
  std::string wordnet_dir = kWordNetDir;
};

// Loads WordNet once; documents of a shard are shared out over OpenMP threads.
std::unique_ptr<TextAugmenter> makePerturber(const PerturbConfig& config);

// The config.num_aug variants of one document (before dropping any), for tests and benches.
std::vector<std::string> perturbDocument(std::string_view doc, uint64_t doc_id,
                                         const PerturbConfig& config, SentencePerturber& perturber,
                                         EdaCounts& counts);

}  // namespace kdgrid::augment
