// The command line the C++ benches share (Boost.Program_options): the model-shape flags named
// as in `kdgrid train`, and parsing with --help and usage errors handled the same way.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <sstream>

#include "src/model/config.h"

namespace kdgrid::bench {

// The model the engine's speed goals are stated for: GPT-2 with 4 layers, d_model 256, 4 heads,
// d_ff 1024, vocabulary 4096, sequences of 256.
inline ModelConfig benchModel() {
  ModelConfig mc;
  mc.n_layer = 4;
  mc.d_model = 256;
  mc.n_head = 4;
  mc.d_ff = 1024;
  mc.vocab_size = 4096;
  mc.max_seq = 256;
  return mc;
}

// --n-layer --d-model --n-head --d-ff --vocab-size --max-seq, defaulting to mc's values.
inline void addModelOptions(boost::program_options::options_description& opts, ModelConfig& mc) {
  namespace po = boost::program_options;
  opts.add_options()("n-layer", po::value(&mc.n_layer)->default_value(mc.n_layer), "blocks")(
      "d-model", po::value(&mc.d_model)->default_value(mc.d_model), "width")(
      "n-head", po::value(&mc.n_head)->default_value(mc.n_head), "heads")(
      "d-ff", po::value(&mc.d_ff)->default_value(mc.d_ff), "MLP width")(
      "vocab-size", po::value(&mc.vocab_size)->default_value(mc.vocab_size), "vocabulary")(
      "max-seq", po::value(&mc.max_seq)->default_value(mc.max_seq), "sequence length");
}

// Parses argv into vm. Returns the exit code when the bench should stop here: 0 after printing
// --help, 2 after a usage error (printed as "NAME: message"); nullopt to go on.
inline std::optional<int> parseOptions(int argc, char** argv,
                                       const boost::program_options::options_description& opts,
                                       boost::program_options::variables_map& vm,
                                       const char* name) {
  namespace po = boost::program_options;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::printf("%s", (std::ostringstream() << opts).str().c_str());
    return 0;
  }
  return std::nullopt;
}

}  // namespace kdgrid::bench
