#include "data/token_stream.h"

#include <algorithm>

#include "src/core/check.h"

namespace kdgrid {

TokenStream::TokenStream(const std::string& dir) : dir_(dir) {
  starts_.push_back(0);
  for (const std::string& path : listShards(dir, kTokensFormat)) {
    infos_.push_back(readTokenShardInfo(path));
    const TokenShardInfo& s = infos_.back();
    const TokenShardInfo& first = infos_.front();
    KDGRID_INPUT_CHECK(s.vocab_size == first.vocab_size && s.eot_token == first.eot_token &&
                           s.tokenizer_sha256 == first.tokenizer_sha256,
                       "{}: vocab_size/eot_token/tokenizer_sha256 differ from {} (the shards of "
                       "one directory must come from one tokenizer)",
                       s.path, first.path);
    starts_.push_back(starts_.back() + s.n_tokens);
  }
  readers_.resize(infos_.size());
}

void TokenStream::read(uint64_t begin, uint64_t count, uint32_t* out) const {
  KDGRID_CHECK(begin + count <= size(), "token range [{}, {}) past the end ({}) of {}", begin,
               begin + count, size(), dir_);
  // First shard whose range contains `begin`.
  size_t s = std::upper_bound(starts_.begin(), starts_.end(), begin) - starts_.begin() - 1;
  while (count > 0) {
    const uint64_t offset = begin - starts_[s];
    if (!readers_[s]) readers_[s].emplace(infos_[s]);
    const uint64_t n = std::min(count, infos_[s].n_tokens - offset);
    std::vector<uint32_t> part = readers_[s]->read(offset, n);  // ids checked < vocab_size
    std::copy(part.begin(), part.end(), out);
    out += n;
    begin += n;
    count -= n;
    ++s;
  }
}

}  // namespace kdgrid
