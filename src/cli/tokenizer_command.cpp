// `kdgrid tokenizer`: the work lives in data/train_tokenizer.h.
#include "data/train_tokenizer.h"
#include "src/cli/commands.h"

namespace kdgrid {

int runTokenizer(const CommandLine& cmd) {
  TokenizerConfig config;
  po::variables_map vm;
  if (!parseOptions(cmd, tokenizerOptions(config), vm)) return kExitOk;
  config.validate();
  trainTokenizer(config);
  return kExitOk;
}

}  // namespace kdgrid
