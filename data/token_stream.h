// The tokens of a directory of kdgrid-tokens shards as one stream: shards concatenated in
// file-name order, read by global token offset (a range may span shards). A shard is opened
// on its first read and stays open; use one stream per thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/shards.h"

namespace kdgrid {

class TokenStream {
 public:
  // Every kdgrid-tokens shard in `dir`; all must agree on vocab_size, eot_token and
  // tokenizer_sha256 (UsageError naming the shards otherwise).
  explicit TokenStream(const std::string& dir);

  uint64_t size() const { return starts_.back(); }
  const std::string& dir() const { return dir_; }
  uint32_t vocabSize() const { return infos_.front().vocab_size; }
  uint32_t eotToken() const { return infos_.front().eot_token; }
  const std::string& tokenizerSha256() const { return infos_.front().tokenizer_sha256; }

  // Tokens [begin, begin + count) into out (count <= size() - begin, checked); ids are
  // checked < vocab_size by the shard reader (UsageError naming the shard).
  void read(uint64_t begin, uint64_t count, uint32_t* out) const;

 private:
  std::string dir_;
  std::vector<TokenShardInfo> infos_;
  mutable std::vector<std::optional<TokenShardReader>> readers_;  // opened on first read
  std::vector<uint64_t> starts_;  // [n_shards + 1] cumulative token offsets
};

}  // namespace kdgrid
