// The output directory of `kdgrid augment` (every method): refusing one that holds shards,
// writing shards as NAME.part and renaming them only when every rank succeeded.
#pragma once

#include <string>
#include <vector>

namespace kdgrid::augment {

// Suffix of an output shard being written: no reader takes it (only *.h5 files are shards).
inline constexpr char kPartSuffix[] = ".part";

// Rank 0: creates `out`; refuses one that holds shards (UsageError naming --out); removes .part
// files of an interrupted run.
void prepareOutputDir(const std::string& out);

// Removes each path and its writer's temporary `path + ".tmp"`; never throws.
void removeFiles(const std::vector<std::string>& paths) noexcept;

// Collective over MPI_COMM_WORLD: once every rank reaches it, each renames its `parts`
// (NAME.h5.part -> NAME.h5). When any rank fails, every rank removes what it wrote or renamed
// and throws the agreed error.
void publishParts(const std::vector<std::string>& parts);

}  // namespace kdgrid::augment
