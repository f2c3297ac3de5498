// The `prepare` pipeline (DESIGN section 2): text files, or directories of kdgrid-text
// shards, -> DIR/train/ and DIR/val/ text shards and token shards. Collective over
// MPI_COMM_WORLD: the documents are encoded on all ranks, and the output is byte-identical
// whatever the rank count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/core/options.h"

namespace kdgrid {

struct PrepareConfig {
  std::vector<std::string> input;
  std::string tokenizer;
  std::string out;
  double val_fraction = 0.05;
  int64_t shard_tokens = int64_t{1} << 24;  // signed, so a negative value is reported, not wrapped

  // Checks each value; the message names the flag.
  void validate() const;
};

// --input --tokenizer --out --val-fraction --shard-tokens
po::options_description prepareOptions(PrepareConfig& config);

// Writes the shards and prints a summary (rank 0). Input errors (a missing file, an empty
// split, an output directory that already holds shards) exit 2 naming the option or file.
void prepareShards(const PrepareConfig& config);

}  // namespace kdgrid
