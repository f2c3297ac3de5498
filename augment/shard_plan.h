// Which rank augments which input shard, and the global document numbering.
//
// A rank takes whole input shards. Shards go to ranks by size (the largest first, each to the
// rank with the fewest bytes so far; ties to the lower index), so the plan depends on the
// input directory and the number of ranks only. Document numbers and output names depend on
// the input alone: output shard NAME is the augmented input shard NAME.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kdgrid::augment {

struct ShardAssignment {
  std::string path;  // input shard
  std::string name;  // its file name; the output shard's name too
  uint64_t num_docs = 0;
  uint64_t first_doc = 0;  // index of its first document among all input documents
  uint64_t bytes = 0;      // file size, for balancing
  int owner = 0;           // the rank that augments it
};

// Every kdgrid-text shard of `dir` in file-name order, with its owner among `world` ranks.
// Throws UsageError naming the directory or the shard when one is missing or malformed.
std::vector<ShardAssignment> planShards(const std::string& dir, int world);

// The same for kdgrid-tokens shards (fgsm), balanced by token count; `bytes` holds the token
// count and `first_token` the shard's offset in the concatenated tokens of `dir`.
struct TokenShardAssignment : ShardAssignment {
  uint64_t num_tokens = 0;
  uint64_t first_token = 0;
};
std::vector<TokenShardAssignment> planTokenShards(const std::string& dir, int world);

}  // namespace kdgrid::augment
