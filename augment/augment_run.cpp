#include "augment/augment_run.h"

#include <mpi.h>

#include <chrono>
#include <deque>
#include <filesystem>

#include "augment/output_dir.h"
#include "augment/shard_plan.h"
#include "data/shards.h"
#include "src/core/agreement.h"
#include "src/core/check.h"
#include "src/core/log.h"

namespace kdgrid::augment {
namespace {

namespace fs = std::filesystem;

std::vector<uint64_t> statsVector(const AugmentStats& s) {
  return {s.shards, s.shards_written, s.docs, s.segments, s.written, s.identical, s.duplicate};
}

}  // namespace

AugmentSummary runTextAugmentation(const AugmentRunConfig& config,
                                   const std::function<std::unique_ptr<TextAugmenter>()>& make) {
  const auto start = std::chrono::steady_clock::now();
  const int me = worldRank();
  std::vector<ShardAssignment> plan;
  agreeOnOutcome([&] { plan = planShards(config.input, worldSize()); });
  agreeOnOutcome([&] {
    if (me == 0) prepareOutputDir(config.out);
  });

  std::vector<const ShardAssignment*> mine;
  for (const ShardAssignment& shard : plan) {
    if (shard.owner == me) mine.push_back(&shard);
  }
  AugmentStats stats;
  std::vector<std::string> parts;  // written by this rank
  auto work = [&] {
    if (mine.empty()) return;
    std::unique_ptr<TextAugmenter> method = make();
    std::deque<InputShard> in_flight;  // submitted, not yet collected
    uint64_t in_flight_bytes = 0;
    auto collectOldest = [&] {
      const InputShard& shard = in_flight.front();
      TextShard out = method->collect(shard, stats);
      out.provenance.params = config.params;
      // Every input shard gives its output shard, with num_docs 0 when none of its documents
      // kept a variant: the output names stay complete (a missing one would look like a lost
      // shard), and readers (prepare, augment --input) take a shard without documents.
      const std::string part = (fs::path(config.out) / shard.name).string() + kPartSuffix;
      parts.push_back(part);
      writeTextShard(part, out);
      ++stats.shards_written;
      ++stats.shards;
      stats.docs += shard.text.numDocs();
      in_flight_bytes -= shard.text.bytes.size();
      in_flight.pop_front();
    };
    for (const ShardAssignment* shard : mine) {
      InputShard input{shard->name, readTextShard(shard->path), shard->first_doc};
      KDGRID_INPUT_CHECK(input.text.numDocs() == shard->num_docs,
                         "--input: shard '{}' changed while augment read it ({} documents, {} "
                         "before)",
                         shard->path, input.text.numDocs(), shard->num_docs);
      in_flight_bytes += input.text.bytes.size();
      in_flight.push_back(std::move(input));
      method->submit(in_flight.back());
      // Collect the oldest shard once enough text follows it (see TextAugmenter).
      while (!in_flight.empty() &&
             in_flight_bytes - in_flight.front().text.bytes.size() >= method->lookaheadBytes()) {
        collectOldest();
      }
    }
    method->endOfInput();
    while (!in_flight.empty()) collectOldest();
    method->finish();
  };
  try {
    agreeOnOutcome(work);
  } catch (...) {
    removeFiles(parts);
    throw;
  }

  publishParts(parts);

  AugmentSummary summary;
  std::vector<uint64_t> totals = statsVector(stats);
  KDGRID_MPI(MPI_Allreduce(MPI_IN_PLACE, totals.data(), static_cast<int>(totals.size()),
                           MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD));
  summary.stats = {totals[0], totals[1], totals[2], totals[3], totals[4], totals[5], totals[6]};
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  KDGRID_MPI(MPI_Allreduce(MPI_IN_PLACE, &summary.seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  return summary;
}

}  // namespace kdgrid::augment
