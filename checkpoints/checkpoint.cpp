#include "checkpoints/checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <mpi.h>
#include <sys/resource.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "checkpoints/checkpoint_dir.h"
#include "checkpoints/checksum.h"
#include "checkpoints/format.h"
#include "checkpoints/verify.h"
#include "data/h5_parallel.h"
#include "src/core/agreement.h"
#include "src/core/check.h"
#include "src/core/fault_injector.h"
#include "src/core/log.h"

namespace kdgrid {

namespace fs = std::filesystem;

namespace {

// --- a rank's slabs as HDF5 blocks ---

// The LocalTensors of one logical tensor that a rank holds in one flat buffer: one for the
// parameters, up to three pieces (piecesInRange) for a ZeRO-1 shard of the moments.
using Pieces = std::vector<const LocalTensor*>;

// One row of one slab: `cols` elements of logical row `row` starting at logical column
// `col0`, found at element `flat` of the flat buffer.
struct Segment {
  int64_t row, col0, cols;
  size_t flat;
};

// The rows of the pieces' slabs in row-major order of their logical coordinates: the order in
// which HDF5 hands over the elements of a selection, so packed buffers line up with blocksOf.
std::vector<Segment> segmentsOf(const Pieces& pieces) {
  std::vector<Segment> segments;
  for (const LocalTensor* p : pieces) {
    for (const Slab& s : p->slabs) {
      for (int64_t r = 0; r < s.rows; ++r) {
        segments.push_back({s.row0 + r, s.col0, s.cols,
                            p->offset + static_cast<size_t>((s.local_row0 + r) * p->local_cols)});
      }
    }
  }
  std::sort(segments.begin(), segments.end(), [](const Segment& a, const Segment& b) {
    return a.row != b.row ? a.row < b.row : a.col0 < b.col0;
  });
  return segments;
}

std::vector<h5::Block> blocksOf(const Pieces& pieces) {
  std::vector<h5::Block> blocks;
  for (const LocalTensor* p : pieces) {
    for (const Slab& s : p->slabs) {
      blocks.push_back({static_cast<uint64_t>(s.row0), static_cast<uint64_t>(s.rows),
                        static_cast<uint64_t>(s.col0), static_cast<uint64_t>(s.cols)});
    }
  }
  return blocks;
}

std::vector<float> pack(const Pieces& pieces, const float* flat) {
  std::vector<float> packed;
  for (const Segment& s : segmentsOf(pieces))
    packed.insert(packed.end(), flat + s.flat, flat + s.flat + s.cols);
  return packed;
}

void unpack(const Pieces& pieces, const std::vector<float>& packed, float* flat) {
  size_t at = 0;
  for (const Segment& s : segmentsOf(pieces)) {
    std::memcpy(flat + s.flat, packed.data() + at, s.cols * sizeof(float));
    at += s.cols;
  }
}

// This rank's share of the dataset checksum: the terms of its pieces' slabs (checksum.h).
uint64_t partialChecksum(const Pieces& pieces, const float* flat) {
  uint64_t sum = 0;
  for (const LocalTensor* p : pieces) {
    for (const Slab& s : p->slabs) {
      sum += checksumBlock(flat + p->offset + s.local_row0 * p->local_cols, p->local_cols, s.row0,
                           s.rows, s.col0, s.cols, p->logical.cols);
    }
  }
  return sum;
}

// What a rank holds of each logical tensor, split into the pieces it writes (and counts
// towards the checksum) and all it holds; in the order of `local`.
struct Held {
  std::string name;
  Pieces all, writing;
};
std::vector<Held> heldByName(const std::vector<LocalTensor>& local) {
  std::vector<Held> held;
  std::unordered_map<std::string, size_t> at;
  for (const LocalTensor& p : local) {
    const auto [it, fresh] = at.emplace(p.logical.name, held.size());
    if (fresh) held.push_back({p.logical.name, {}, {}});
    Held& h = held[it->second];
    h.all.push_back(&p);
    if (p.writes) h.writing.push_back(&p);
  }
  return held;
}

const char* momentGroup(int kind) {
  return kind == 1 ? kFirstMomentGroup : kSecondMomentGroup;
}

// The same value on every rank, or an internal error (a caller bug: ranks disagree).
void checkSameOnAllRanks(int value, const char* what, const WorldCollectives& world) {
  int lo = value, hi = value;
  world.allReduce(&lo, 1, MPI_INT, MPI_MIN, "all-reduce (min)");
  world.allReduce(&hi, 1, MPI_INT, MPI_MAX, "all-reduce (max)");
  KDGRID_CHECK(lo == hi, "ranks disagree on {} ({} vs {})", what, lo, hi);
}

// --- writing ---

// Collective: one float32 dataset per spec in `group`, this rank's blocks of those it writes
// (`local`: its tensors in `flat`), then each dataset's checksum (the writers' partial sums,
// all-reduced).
void writeTensorGroup(h5::Group& group, const std::vector<TensorShape>& all,
                      const std::vector<LocalTensor>& local, const float* flat,
                      const WorldCollectives& world) {
  std::unordered_map<std::string, Held> held;
  for (Held& h : heldByName(local)) held.emplace(h.name, std::move(h));
  std::vector<h5::Dataset> datasets;
  std::vector<uint64_t> sums(all.size(), 0);
  for (size_t i = 0; i < all.size(); ++i) {
    const TensorShape& shape = all[i];
    h5::Dataset ds = group.createDataset(shape.name, datasetShape(shape), h5::ElemType::kF32,
                                         h5::DatasetOptions{.contiguous = true});
    std::vector<h5::Block> blocks;
    std::vector<float> packed;
    if (const auto found = held.find(shape.name); found != held.end()) {
      for (const LocalTensor* p : found->second.all) {
        KDGRID_CHECK(p->logical.rows == shape.rows && p->logical.cols == shape.cols,
                     "tensor '{}' is [{}, {}] locally but [{}, {}] in the checkpoint", shape.name,
                     p->logical.rows, p->logical.cols, shape.rows, shape.cols);
      }
      const Pieces& writing = found->second.writing;
      blocks = blocksOf(writing);
      packed = pack(writing, flat);
      sums[i] = partialChecksum(writing, flat);
    }
    h5::writeBlocks(ds, h5::ElemType::kF32, blocks, packed.data(), h5::Transfer::kCollective);
    datasets.push_back(std::move(ds));
  }
  world.allReduce(sums.data(), static_cast<int>(sums.size()), MPI_UINT64_T, MPI_SUM,
                  "all-reduce (sum) of the checksums");
  for (size_t i = 0; i < all.size(); ++i)
    h5::writeUInt64Attribute(datasets[i], kChecksumAttribute, sums[i]);
}

void writeModelFile(const std::string& path, const CheckpointMeta& meta, const TrainingState& state,
                    const RankTensors& t, const WorldCollectives& world) {
  h5::Handle fapl = h5::mpioFileAccess(MPI_COMM_WORLD);
  h5::File file = h5::File::create(path, fapl.get());
  {
    h5::Group group = file.createGroup(kModelGroup);
    writeModelHeader(file, group, meta, state);
    writeTensorGroup(group, t.all, t.local, t.params, world);
  }
  file.close();
}

void writeOptimizerFile(const std::string& path, const TrainingState& state, const RankTensors& t,
                        const WorldCollectives& world) {
  h5::Handle fapl = h5::mpioFileAccess(MPI_COMM_WORLD);
  h5::File file = h5::File::create(path, fapl.get());
  writeOptimizerHeader(file, state);
  if (t.m) {
    for (int kind = 1; kind <= 2; ++kind) {
      h5::Group group = file.createGroup(momentGroup(kind));
      writeTensorGroup(group, t.all, t.moment_local, kind == 1 ? t.m : t.v, world);
    }
  }
  file.close();
}

// Fails early, before any HDF5 file exists, when the files cannot fit: the file-size limit
// (ulimit -f) of any rank or the free space on rank 0's view of the file system is below the
// tensor bytes (their metadata adds a little more). HDF5 1.10 cannot close a file it failed
// to flush and then crashes at exit (HDFFV-11052), so the usual "disk full" is best caught here.
void checkRoom(const std::string& ckpt_dir, const std::string& final_dir, uint64_t model_bytes,
               uint64_t optimizer_bytes, const WorldCollectives& world) {
  std::optional<Failure> local;
  const uint64_t largest = std::max(model_bytes, optimizer_bytes);
  struct rlimit limit {};
  if (getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      limit.rlim_cur < largest) {
    local = Failure{
        0, fmt::format("the file size limit (ulimit -f) of rank {} is {} bytes, below the {} "
                       "bytes of tensor data of one file",
                       worldRank(), limit.rlim_cur, largest)};
  }
  struct statvfs fs_info {};
  if (!local && worldRank() == 0 && statvfs(ckpt_dir.c_str(), &fs_info) == 0) {
    const uint64_t free_bytes = static_cast<uint64_t>(fs_info.f_bavail) * fs_info.f_frsize;
    if (free_bytes < model_bytes + optimizer_bytes) {
      local = Failure{1, fmt::format("'{}' has {} bytes free, the checkpoint needs at least {}",
                                     ckpt_dir, free_bytes, model_bytes + optimizer_bytes)};
    }
  }
  if (const std::optional<Failure> first = firstFailure(local, world)) {
    throw Error(kExitFailure,
                fmt::format("cannot save checkpoint '{}' (earlier checkpoints and 'latest' are "
                            "untouched): {}",
                            final_dir, first->message),
                /*on_every_rank=*/true);
  }
}

// --- reading ---

// What the ranks read of each dataset, numbered kind * P + i over the checkpoint's P
// parameters (kind 0 model, 1 m, 2 v), for the all-reduced checks after reading.
struct LoadTally {
  explicit LoadTally(size_t n) : sums(n, 0), stored(n, 0), counted(n, 0), read(n, 0) {}
  std::vector<uint64_t> sums;    // partial checksums of the writing replicas
  std::vector<uint64_t> stored;  // the checksum attribute (where this rank read the dataset)
  std::vector<int> counted;      // pieces that contributed to `sums`
  std::vector<int> read;         // ranks that read the dataset
};

// Reads this rank's slabs of every tensor it holds (`local`, in `flat`) from `group`
// (independent transfers). `index`: the slot of each dataset of the checkpoint (its /model
// datasets).
void readTensorGroup(const h5::Group& group, int kind,
                     const std::unordered_map<std::string, size_t>& index,
                     const std::vector<LocalTensor>& local, float* flat, LoadTally& tally) {
  for (const Held& held : heldByName(local)) {
    // Zeroed first: vocabulary padding rows stay zero, as do pieces without slabs.
    for (const LocalTensor* p : held.all)
      std::memset(flat + p->offset, 0, p->numel() * sizeof(float));
    const std::vector<h5::Block> blocks = blocksOf(held.all);
    if (blocks.empty()) continue;  // only padding here
    // Fails naming the dataset when it is missing or misshapen.
    h5::Dataset ds = openTensor(group, held.all.front()->logical);
    const auto found = index.find(held.name);
    if (found == index.end()) ds.fail("is not a tensor of the checkpoint's model");
    const size_t slot = kind * index.size() + found->second;
    std::vector<float> packed(h5::blockElements(blocks));
    h5::readBlocks(ds, h5::ElemType::kF32, blocks, packed.data(), h5::Transfer::kIndependent);
    unpack(held.all, packed, flat);
    tally.stored[slot] = ds.readIntAttribute<uint64_t>(kChecksumAttribute);
    tally.read[slot] = 1;
    tally.sums[slot] += partialChecksum(held.writing, flat);
    tally.counted[slot] += static_cast<int>(held.writing.size());
  }
}

// Throws the first failure any rank had (the same UsageError on every rank).
void throwIfAnyFailed(const std::optional<Failure>& local, const WorldCollectives& world) {
  if (const std::optional<Failure> first = firstFailure(local, world)) {
    throw UsageError(first->message, /*on_every_rank=*/true);
  }
}

std::string baseName(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

}  // namespace

std::vector<LocalTensor> piecesInRange(const LocalTensor& p, size_t begin, size_t end) {
  std::vector<LocalTensor> pieces;
  const size_t lo = std::max(begin, p.offset);
  const size_t hi = std::min(end, p.offset + static_cast<size_t>(p.numel()));
  if (lo >= hi) return pieces;
  const int64_t cols = p.local_cols;
  const int64_t first = static_cast<int64_t>(lo - p.offset);  // local elements [first, last)
  const int64_t last = static_cast<int64_t>(hi - p.offset);
  // Local rows [r0, r0 + rows), local columns [c0, c1): a contiguous run of the buffer when
  // rows == 1 or the columns are whole.
  auto add = [&](int64_t r0, int64_t rows, int64_t c0, int64_t c1) {
    LocalTensor q;
    q.logical = p.logical;
    q.local_rows = rows;
    q.local_cols = c1 - c0;
    q.offset = p.offset + static_cast<size_t>(r0 * cols + c0) - begin;
    q.writes = p.writes;
    for (const Slab& s : p.slabs) {  // a slab covers local columns [0, s.cols)
      const int64_t ra = std::max(r0, s.local_row0);
      const int64_t rb = std::min(r0 + rows, s.local_row0 + s.rows);
      const int64_t cb = std::min(c1, s.cols);
      if (ra >= rb || c0 >= cb) continue;
      q.slabs.push_back({s.row0 + (ra - s.local_row0), rb - ra, s.col0 + c0, cb - c0, ra - r0});
    }
    pieces.push_back(std::move(q));
  };
  const int64_t r_first = first / cols, c_first = first % cols;
  const int64_t r_last = last / cols, c_last = last % cols;  // exclusive end
  if (r_first == r_last) {
    add(r_first, 1, c_first, c_last);
    return pieces;
  }
  int64_t r = r_first;
  if (c_first > 0) add(r++, 1, c_first, cols);
  if (r < r_last) add(r, r_last - r, 0, cols);
  if (c_last > 0) add(r_last, 1, 0, c_last);
  return pieces;
}

std::string saveCheckpoint(const std::string& run_dir, const CheckpointMeta& meta,
                           const TrainingState& state, const RankTensors& tensors, int keep,
                           const WorldCollectives& world) {
  KDGRID_CHECK(tensors.params, "saveCheckpoint needs parameters");
  KDGRID_CHECK((tensors.m == nullptr) == (tensors.v == nullptr),
               "saveCheckpoint needs both m and v, or neither");
  checkSameOnAllRanks(tensors.m != nullptr, "whether to save AdamW moments", world);
  const std::string ckpt_dir = checkpointsDir(run_dir);
  const std::string name = stepDirName(state.step);
  const std::string final_dir = (fs::path(ckpt_dir) / name).string();
  const std::string tmp_dir = final_dir + kTmpSuffix;

  runOnRankZero([&] {
    fs::create_directories(ckpt_dir);
    fs::remove_all(tmp_dir);  // a crashed save of the same step
    fs::create_directory(tmp_dir);
  }, world);
  // The broadcast inside runOnRankZero orders every rank after the directory exists.
  uint64_t model_bytes = 0;
  for (const TensorShape& shape : tensors.all)
    model_bytes += static_cast<uint64_t>(shape.rows * shape.cols) * sizeof(float);
  checkRoom(ckpt_dir, final_dir, model_bytes, tensors.m ? 2 * model_bytes : 0, world);
  try {
    writeModelFile((fs::path(tmp_dir) / kModelFileName).string(), meta, state, tensors, world);
    if (FaultInjector* faults = faultInjector()) faults->afterModelFile(state.step);
    writeOptimizerFile((fs::path(tmp_dir) / kOptimizerFileName).string(), state, tensors, world);
    if (FaultInjector* faults = faultInjector()) faults->beforePublish(state.step);
  } catch (const Error& e) {
    throw Error(e.exitCode(), fmt::format("cannot save checkpoint '{}' (earlier checkpoints and "
                                          "'latest' are untouched): {}",
                                          final_dir, e.what()));
  }
  runOnRankZero([&] {
    fsyncDirectoryTree(tmp_dir);
    publishDirectory(tmp_dir, final_dir);
    writePointer(ckpt_dir, kLatestFile, name);
    for (const std::string& gone : pruneCheckpoints(ckpt_dir, keep))
      log0("removed old checkpoint {}", gone);
  }, world);
  return final_dir;
}

void markBest(const std::string& run_dir, const std::string& step_dir) {
  const std::string name = baseName(step_dir);
  const std::string ckpt_dir = checkpointsDir(run_dir);
  KDGRID_CHECK(parseStepDirName(name) && fs::is_directory(fs::path(ckpt_dir) / name),
               "markBest: '{}' is not a checkpoint of '{}'", step_dir, run_dir);
  writePointer(ckpt_dir, kBestFile, name);
}

CheckpointMeta readCheckpointMeta(const std::string& step_dir) {
  try {
    const h5::File file = h5::File::openRead((fs::path(step_dir) / kModelFileName).string());
    return readModelHeader(file).meta;
  } catch (const CheckpointError&) {
    throw;
  } catch (const UsageError& e) {
    throw CheckpointError(e.what(), e.onEveryRank());
  }
}

namespace {

TrainingState loadCheckpointTensors(const std::string& step_dir, const RankTensors& tensors,
                                    const WorldCollectives& world) {
  KDGRID_CHECK(tensors.params, "loadCheckpoint needs parameters");
  KDGRID_CHECK((tensors.m == nullptr) == (tensors.v == nullptr),
               "loadCheckpoint needs both m and v, or neither");
  const bool moments = tensors.m != nullptr;
  checkSameOnAllRanks(moments, "whether to load AdamW moments", world);
  const std::string model_path = (fs::path(step_dir) / kModelFileName).string();
  const std::string optimizer_path = (fs::path(step_dir) / kOptimizerFileName).string();

  // Opening and closing an MPI-IO file are collective: every rank opens both files whatever
  // failed before; a failure inside is recorded and agreed on after the file is closed.
  ModelHeader header;
  std::vector<std::string> names;  // the checkpoint's tensors
  std::unordered_map<std::string, size_t> index;
  std::optional<LoadTally> tally;
  {
    h5::Handle fapl = h5::mpioFileAccess(MPI_COMM_WORLD);
    const h5::File model = h5::File::openRead(model_path, fapl.get());
    std::optional<Failure> local;
    try {
      header = readModelHeader(model);
      const h5::Group group = model.openGroup(kModelGroup);
      names = group.datasetNames();
      for (size_t i = 0; i < names.size(); ++i) index.emplace(names[i], i);
      tally.emplace(3 * names.size());
      readTensorGroup(group, 0, index, tensors.local, tensors.params, *tally);
    } catch (const std::exception& e) {
      local = Failure{0, e.what()};
    }
    throwIfAnyFailed(local, world);
  }
  TrainingState state;
  state.step = header.step;
  state.tokens_seen = header.tokens_seen;
  if (moments) {
    h5::Handle fapl = h5::mpioFileAccess(MPI_COMM_WORLD);
    const h5::File optimizer = h5::File::openRead(optimizer_path, fapl.get());
    std::optional<Failure> local;
    try {
      state = readOptimizerHeader(optimizer);
      if (state.step != header.step) {
        optimizer.fail(
            fmt::format("holds step {}, but {} holds step {}: the files do not belong together",
                        state.step, model_path, header.step));
      }
      for (int kind = 1; kind <= 2; ++kind) {
        readTensorGroup(optimizer.openGroup(momentGroup(kind)), kind, index,
                        tensors.moment_local, kind == 1 ? tensors.m : tensors.v, *tally);
      }
    } catch (const std::exception& e) {
      local = Failure{0, e.what()};
    }
    throwIfAnyFailed(local, world);
  }

  // Every dataset whole: the writing replicas' partial sums add up to the dataset's checksum
  // only if each element was counted exactly once and holds the bits that were saved.
  LoadTally& t = *tally;
  const std::vector<int> read_here = t.read;  // the datasets this rank read (and their `stored`)
  const int n = static_cast<int>(t.sums.size());
  world.allReduce(t.sums.data(), n, MPI_UINT64_T, MPI_SUM, "all-reduce (sum) of the checksums");
  world.allReduce(t.counted.data(), n, MPI_INT, MPI_SUM, "all-reduce (sum)");
  world.allReduce(t.read.data(), n, MPI_INT, MPI_SUM, "all-reduce (sum)");
  std::optional<Failure> local;
  const int kinds = moments ? 3 : 1;
  const int n_names = static_cast<int>(names.size());
  for (int slot = 0; slot < n_names * kinds && !local; ++slot) {
    const std::string& name = names[slot % n_names];
    const std::string where = fmt::format(
        "HDF5 file '{}', dataset '/{}/{}'", slot < n_names ? model_path : optimizer_path,
        slot < n_names ? kModelGroup : momentGroup(slot / n_names), name);
    if (t.read[slot] == 0) {
      local =
          Failure{1 + slot, fmt::format("{}: no rank's model has this tensor (the checkpoint's "
                                        "model is larger than the one loading it)",
                                        where)};
    } else if (read_here[slot]) {
      KDGRID_CHECK(t.counted[slot] > 0,
                   "{}: no rank counted it: set LocalTensor::writes on one replica", where);
      if (t.sums[slot] != t.stored[slot]) {
        local = Failure{1 + slot,
                        fmt::format("{}: checksum mismatch (stored {:#018x}, computed {:#018x}): "
                                    "the data is corrupt",
                                    where, t.stored[slot], t.sums[slot])};
      }
    }
  }
  throwIfAnyFailed(local, world);
  return state;
}

}  // namespace

TrainingState loadCheckpoint(const std::string& step_dir, const RankTensors& tensors,
                             const WorldCollectives& world) {
  try {
    return loadCheckpointTensors(step_dir, tensors, world);
  } catch (const CheckpointError&) {
    throw;
  } catch (const UsageError& e) {  // all of them are about the checkpoint's files
    throw CheckpointError(e.what(), e.onEveryRank());
  }
}

CheckpointCandidates findCheckpoints(const std::string& path, const WorldCollectives& world) {
  // Rank 0 looks at the file system and broadcasts the plan.
  enum Kind { kError = 0, kNone = 1, kStepDir = 2, kRunDir = 3 };
  int kind = kNone;
  std::vector<std::string> plan;  // kError: {message}; kStepDir/kRunDir: candidates, best first
  bool latest_first = false;      // plan[0] is what `latest` names
  if (worldRank() == 0) {
    std::error_code ec;
    const fs::path p(path);
    if (!fs::exists(p, ec)) {
      kind = kError;
      plan = {fmt::format("checkpoint '{}' does not exist", path)};
    } else if (!fs::is_directory(p, ec)) {
      kind = kError;
      plan = {
          fmt::format("checkpoint '{}' is not a directory (expected a step_NNNNNNNN directory or a "
                      "run directory)",
                      path)};
    } else if (parseStepDirName(baseName(path)) || fs::exists(p / kModelFileName, ec)) {
      kind = kStepDir;
      plan = {path};
    } else {
      const std::string ckpt_dir =
          fs::is_directory(p / "checkpoints", ec) ? checkpointsDir(path) : path;
      std::optional<std::string> latest;
      try {
        latest = readPointer(ckpt_dir, kLatestFile);
      } catch (const UsageError& e) {
        log0("warning: {}", e.what());
      }
      if (latest && fs::is_directory(fs::path(ckpt_dir) / *latest, ec)) {
        plan.push_back((fs::path(ckpt_dir) / *latest).string());
        latest_first = true;
      } else if (latest) {
        log0("warning: '{}' names {}, which does not exist",
             (fs::path(ckpt_dir) / kLatestFile).string(), *latest);
      }
      for (const std::string& name : listStepDirs(ckpt_dir)) {
        if (!latest || name != *latest) plan.push_back((fs::path(ckpt_dir) / name).string());
      }
      if (!latest && !plan.empty()) {
        log0("warning: '{}' has no '{}' file; trying its step directories, newest first", ckpt_dir,
             kLatestFile);
      }
      kind = plan.empty() ? kNone : kRunDir;
    }
  }
  world.broadcast(&kind, 1, MPI_INT, 0);
  int latest_flag = latest_first;
  world.broadcast(&latest_flag, 1, MPI_INT, 0);
  plan = broadcastStrings(plan, 0, world);
  if (kind == kError) throw UsageError(plan.at(0), /*on_every_rank=*/true);
  CheckpointCandidates c;
  c.path = path;
  if (kind != kNone) c.dirs = plan;
  c.run_dir = kind == kRunDir;
  c.latest_first = latest_flag != 0;
  return c;
}

std::optional<std::string> loadFirstIntact(
    const CheckpointCandidates& candidates,
    const std::function<void(const std::string& step_dir)>& load, const WorldCollectives& world) {
  if (candidates.dirs.empty()) return std::nullopt;
  std::vector<std::string> problems;
  for (size_t i = 0; i < candidates.dirs.size(); ++i) {
    const std::string& dir = candidates.dirs[i];
    std::optional<Failure> local;
    try {
      load(dir);
    } catch (const CheckpointError& e) {
      local = Failure{0, e.what()};
    }
    const std::optional<Failure> problem = firstFailure(local, world);
    if (!problem) {
      if (candidates.run_dir && (i > 0 || !candidates.latest_first))
        log0("warning: using {}, the newest intact checkpoint", dir);
      return dir;
    }
    if (!candidates.run_dir) {
      throw UsageError(fmt::format("checkpoint '{}' is damaged: {}", dir, problem->message),
                       /*on_every_rank=*/true);
    }
    log0("warning: checkpoint '{}' is damaged, falling back to an older one: {}", dir,
         problem->message);
    problems.push_back(fmt::format("{}: {}", dir, problem->message));
  }
  throw UsageError(fmt::format("no intact checkpoint in '{}':\n  {}", candidates.path,
                               fmt::join(problems, "\n  ")),
                   /*on_every_rank=*/true);
}

std::optional<std::string> resolveCheckpoint(const std::string& path,
                                             const WorldCollectives& world) {
  return loadFirstIntact(
      findCheckpoints(path, world),
      [&](const std::string& dir) {
        if (const std::optional<std::string> problem = verifyCheckpoint(dir, world))
          throw CheckpointError(*problem, /*on_every_rank=*/true);
      },
      world);
}

}  // namespace kdgrid
