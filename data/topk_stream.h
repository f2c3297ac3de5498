// The teacher's top-k rows for a directory of token shards (offline distillation), read by
// global token offset like TokenStream: row i of the stream is the teacher's prediction made at
// token i of the token stream (token shards concatenated in file-name order).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/topk_shards.h"

namespace kdgrid {

class TopkStream {
 public:
  // Aligns `topk_dir` (kdgrid-teacher-topk shards) with `token_dir` (kdgrid-tokens shards): every
  // token shard must have exactly one top-k shard whose `token_shard` attribute is its file
  // name, with the same number of tokens; k and temperature must be the same in every top-k
  // shard; vocab_size and tokenizer_sha256, where a top-k shard records them, must equal the
  // token shards'. UsageError naming the shards otherwise. Reads headers only.
  TopkStream(const std::string& topk_dir, const std::string& token_dir);

  uint64_t size() const { return starts_.back(); }
  uint32_t k() const { return infos_.front().k; }
  double temperature() const { return infos_.front().temperature; }
  const std::string& teacherCheckpoint() const { return infos_.front().teacher_checkpoint; }
  const std::string& dir() const { return dir_; }

  // Rows [begin, begin + count) into ids and logprobs [count, k] (a range may span shards).
  // Ids are checked below the token shards' vocab_size, log-probabilities finite.
  void read(uint64_t begin, uint64_t count, uint32_t* ids, float* logprobs) const;

 private:
  std::string dir_;
  uint32_t vocab_size_ = 0;
  std::vector<TopkShardInfo> infos_;                             // in the token shards' order
  mutable std::vector<std::optional<TopkShardReader>> readers_;  // opened on first read
  std::vector<uint64_t> starts_;  // [n_shards + 1] cumulative token offsets
};

}  // namespace kdgrid
