#include "data/token_stream.h"

#include <algorithm>

#include "core/check.h"

namespace kdgrid {

TokenStream::TokenStream(const std::string& dir) : dir_(dir) {
  starts_.push_back(0);
  for (const std::string& path : listShards(dir, kTokensFormat)) {
    shards_.push_back(readTokenShardInfo(path));
    const TokenShardInfo& s = shards_.back();
    KDGRID_INPUT_CHECK(s.vocab_size == shards_.front().vocab_size &&
                           s.tokenizer_sha256 == shards_.front().tokenizer_sha256,
                       "{}: vocab_size/tokenizer_sha256 differ from {} (shards of one directory "
                       "must come from one tokenizer)",
                       s.path, shards_.front().path);
    starts_.push_back(starts_.back() + s.n_tokens);
  }
}

void TokenStream::read(uint64_t begin, uint64_t count, uint32_t* out) const {
  KDGRID_CHECK(begin + count <= size(), "token range [{}, {}) past the end ({}) of {}", begin,
               begin + count, size(), dir_);
  // First shard whose range contains `begin`.
  size_t s = std::upper_bound(starts_.begin(), starts_.end(), begin) - starts_.begin() - 1;
  while (count > 0) {
    const uint64_t offset = begin - starts_[s];
    const uint64_t n = std::min(count, shards_[s].n_tokens - offset);
    std::vector<uint32_t> part = readTokenRange(shards_[s], offset, n);
    std::copy(part.begin(), part.end(), out);
    out += n;
    begin += n;
    count -= n;
    ++s;
  }
}

}  // namespace kdgrid
