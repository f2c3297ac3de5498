#include "augment/shard_plan.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "data/h5.h"
#include "data/shards.h"

namespace kdgrid::augment {

namespace {

// Largest first, each to the least loaded rank (ties to the lower index).
template <typename Shard>
void assignOwners(std::vector<Shard>& plan, int world) {
  std::vector<size_t> order(plan.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return plan[a].bytes > plan[b].bytes; });
  std::vector<uint64_t> load(static_cast<size_t>(world), 0);
  for (size_t i : order) {
    const auto least = std::min_element(load.begin(), load.end()) - load.begin();
    plan[i].owner = static_cast<int>(least);
    load[static_cast<size_t>(least)] += plan[i].bytes;
  }
}

}  // namespace

std::vector<TokenShardAssignment> planTokenShards(const std::string& dir, int world) {
  namespace fs = std::filesystem;
  std::vector<TokenShardAssignment> plan;
  uint64_t next_doc = 0, next_token = 0;
  for (const std::string& path : listShards(dir, kTokensFormat)) {
    const TokenShardInfo info = readTokenShardInfo(path);
    TokenShardAssignment shard;
    shard.path = path;
    shard.name = fs::path(path).filename().string();
    shard.num_docs = info.n_docs;
    shard.num_tokens = info.n_tokens;
    shard.bytes = info.n_tokens;
    shard.first_doc = next_doc;
    shard.first_token = next_token;
    next_doc += info.n_docs;
    next_token += info.n_tokens;
    plan.push_back(std::move(shard));
  }
  assignOwners(plan, world);
  return plan;
}

std::vector<ShardAssignment> planShards(const std::string& dir, int world) {
  namespace fs = std::filesystem;
  std::vector<ShardAssignment> plan;
  uint64_t next_doc = 0;
  for (const std::string& path : listShards(dir, kTextFormat)) {
    ShardAssignment shard;
    shard.path = path;
    shard.name = fs::path(path).filename().string();
    {
      h5::File file = h5::File::openRead(path);
      h5::Dataset offsets = file.openDataset("text/offsets");
      offsets.expectRank(1);
      if (offsets.dims()[0] == 0) offsets.fail("is empty, expected n_docs + 1 offsets");
      shard.num_docs = offsets.dims()[0] - 1;
    }
    std::error_code ec;
    shard.bytes = fs::file_size(path, ec);
    shard.first_doc = next_doc;
    next_doc += shard.num_docs;
    plan.push_back(std::move(shard));
  }
  assignOwners(plan, world);
  return plan;
}

}  // namespace kdgrid::augment
