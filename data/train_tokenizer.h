// `tokenizer`: train a byte-level BPE tokenizer on text files and write it as JSON (DESIGN
// section 2). Collective over MPI_COMM_WORLD: rank 0 does the work and every rank learns the
// verdict, so all ranks of an mpirun job exit the same way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/core/options.h"

namespace kdgrid {

struct TokenizerConfig {
  std::vector<std::string> input;
  int64_t vocab_size = 0;  // signed, so that a negative value is reported, not wrapped
  std::string out;

  // Checks each value; the message names the flag.
  void validate() const;
};

// --input --vocab-size --out
po::options_description tokenizerOptions(TokenizerConfig& config);

// Trains on every file of config.input and writes config.out; prints a summary (rank 0).
void trainTokenizer(const TokenizerConfig& config);

}  // namespace kdgrid
