#include "data/topk_stream.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "data/shards.h"
#include "src/core/check.h"

namespace kdgrid {

TopkStream::TopkStream(const std::string& topk_dir, const std::string& token_dir) : dir_(topk_dir) {
  namespace fs = std::filesystem;
  std::map<std::string, TopkShardInfo> by_token_shard;
  for (const std::string& path : listShards(topk_dir, kTopkFormat)) {
    TopkShardInfo info = readTopkShardInfo(path);
    auto [it, inserted] = by_token_shard.emplace(info.token_shard, info);
    KDGRID_INPUT_CHECK(inserted, "--teacher-logits {}: {} and {} both claim token shard '{}'",
                       topk_dir, it->second.path, path, info.token_shard);
  }
  starts_.push_back(0);
  for (const std::string& token_path : listShards(token_dir, kTokensFormat)) {
    const TokenShardInfo tokens = readTokenShardInfo(token_path);
    const std::string name = fs::path(token_path).filename().string();
    auto it = by_token_shard.find(name);
    KDGRID_INPUT_CHECK(it != by_token_shard.end(),
                       "--teacher-logits {} has no top-k shard for token shard {} (no shard whose "
                       "attribute 'token_shard' is '{}')",
                       topk_dir, token_path, name);
    const TopkShardInfo& topk = it->second;
    KDGRID_INPUT_CHECK(topk.n_tokens == tokens.n_tokens,
                       "--teacher-logits: {} holds {} rows but its token shard {} holds {} tokens",
                       topk.path, topk.n_tokens, token_path, tokens.n_tokens);
    if (!infos_.empty()) {
      const TopkShardInfo& first = infos_.front();
      KDGRID_INPUT_CHECK(topk.k == first.k && topk.temperature == first.temperature,
                         "--teacher-logits: {} has k {} and temperature {} but {} has k {} and "
                         "temperature {}",
                         topk.path, topk.k, topk.temperature, first.path, first.k,
                         first.temperature);
    }
    KDGRID_INPUT_CHECK(topk.vocab_size == 0 || topk.vocab_size == tokens.vocab_size,
                       "--teacher-logits: {} was written for vocab_size {} but token shard {} has "
                       "vocab_size {}",
                       topk.path, topk.vocab_size, token_path, tokens.vocab_size);
    KDGRID_INPUT_CHECK(
        topk.tokenizer_sha256.empty() || topk.tokenizer_sha256 == tokens.tokenizer_sha256,
        "--teacher-logits: {} was written for tokenizer_sha256 '{}' but token shard "
        "{} has '{}'",
        topk.path, topk.tokenizer_sha256, token_path, tokens.tokenizer_sha256);
    vocab_size_ = tokens.vocab_size;
    infos_.push_back(topk);
    starts_.push_back(starts_.back() + topk.n_tokens);
    by_token_shard.erase(it);
  }
  readers_.resize(infos_.size());
}

void TopkStream::read(uint64_t begin, uint64_t count, uint32_t* ids, float* logprobs) const {
  KDGRID_CHECK(begin + count <= size(), "top-k range [{}, {}) past the end ({}) of {}", begin,
               begin + count, size(), dir_);
  size_t s = std::upper_bound(starts_.begin(), starts_.end(), begin) - starts_.begin() - 1;
  const uint64_t k = this->k();
  while (count > 0) {
    const uint64_t offset = begin - starts_[s];
    if (!readers_[s]) readers_[s].emplace(infos_[s], vocab_size_);
    const uint64_t n = std::min(count, infos_[s].n_tokens - offset);
    readers_[s]->read(offset, n, ids, logprobs);
    ids += n * k;
    logprobs += n * k;
    begin += n;
    count -= n;
    ++s;
  }
}

}  // namespace kdgrid
