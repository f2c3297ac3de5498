#include "augment/shard_plan.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "data/h5.h"
#include "data/shards.h"

namespace kdgrid::augment {

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
  return plan;
}

}  // namespace kdgrid::augment
