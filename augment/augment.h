// `augment --method backtranslate|perturb|fgsm` (DESIGN section 2): the options of every
// method, their checks, and the run. Collective over MPI_COMM_WORLD.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "augment/backtranslate.h"
#include "augment/eda.h"
#include "augment/fgsm_run.h"
#include "augment/method.h"
#include "augment/wordnet.h"
#include "src/core/options.h"

namespace kdgrid {

struct AugmentConfig {
  std::string method;
  std::string input;
  std::string out;
  uint64_t seed = 0;
  // Back-translation.
  std::string bt_pivots = "spa,cat";
  std::string bt_command;
  std::string bt_lang = "eng";
  std::string apertium_dir = augment::kApertiumDir;
  double bt_lookahead_mb = 64;
  // Perturbation.
  augment::EdaRates rates;
  int num_aug = 4;
  std::string wordnet_dir = augment::kWordNetDir;
  // FGSM.
  augment::FgsmRunConfig fgsm;

  static constexpr const char* kBacktranslateOptions[] = {"bt-pivots", "bt-command", "bt-lang",
                                                          "apertium-dir", "bt-lookahead-mb"};
  static constexpr const char* kPerturbOptions[] = {"eda-sr", "eda-ri",  "eda-rs",
                                                    "eda-rd", "num-aug", "wordnet-dir"};
  static constexpr const char* kFgsmOptions[] = {"checkpoint", "epsilon", "max-flips",
                                                 "save-deltas", "device"};

  // The common options and one group per method.
  po::options_description describe();
  // The method; OptionError naming the flag (an option of another method, a value out of range).
  augment::Method validate(const po::variables_map& vm) const;
  // --bt-pivots split at the commas.
  std::vector<std::string> pivots() const;
};

// Augments every input shard with `method` and prints a summary (rank 0).
void runAugmentation(AugmentConfig& config, augment::Method method);

}  // namespace kdgrid
