// Checkpoints (DESIGN section 5): step_NNNNNNNN/{model.h5, optimizer.h5} in
// RUN_DIR/checkpoints/, complete only once `latest` names it.
//
// Every rank writes the slabs it owns of the FULL logical tensors into the same files
// (parallel HDF5, collective I/O), and reads the slabs it needs for the grid it runs on now,
// so a checkpoint saved on one grid loads on any other. Each dataset carries a `checksum`
// attribute computed from its logical values alone (see checksum.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/loader.h"
#include "src/core/attributes.h"
#include "src/core/check.h"
#include "src/core/world_collectives.h"
#include "src/tensor/slab.h"

namespace kdgrid {

// Everything besides tensors that a resumed run needs to continue exactly.
struct TrainingState {
  int64_t step = 0;          // optimizer steps completed
  int64_t tokens_seen = 0;   // global target tokens trained on
  float loss_scale = 1.0f;   // fp16 dynamic loss scale
  int64_t good_steps = 0;    // clean steps since the last scale change
  // AdamW updates applied: `step` minus the skipped steps (fp16 overflow, --on-nan skip).
  // Bias correction counts these, as PyTorch's GradScaler leaves Adam's step alone on a skip.
  int64_t adam_steps = 0;
  DataCursor cursor;         // the global data cursor after `step`
  double best_val_loss = 0;  // lowest validation loss so far (0 = none yet)
};

// A logical tensor of a checkpoint: a float32 dataset [rows] (cols == 1) or [rows, cols].
struct TensorShape {
  std::string name;  // dataset name, e.g. "blocks.3.mlp.fc1.weight"
  int64_t rows = 0, cols = 1;
};

// What one rank holds of a logical tensor: a row-major [local_rows, local_cols] tensor at
// element `offset` of the rank's flat buffers, made of `slabs` of the logical one (local rows
// beyond the slabs, such as vocabulary padding, are zeroed on load).
struct LocalTensor {
  TensorShape logical;
  int64_t local_rows = 0, local_cols = 0;
  std::vector<Slab> slabs;
  size_t offset = 0;
  // Exactly one replica of each element writes it (and, on load, counts it towards the
  // dataset's checksum): the caller sets this on one rank per slab.
  bool writes = false;
  int64_t numel() const { return local_rows * local_cols; }
};

// The pieces of `p` that lie in the flat element range [begin, end) of the buffer p.offset
// refers to, each a LocalTensor of its own over a contiguous part of that range: a partial
// first row, the whole rows, a partial last row (at most three). A piece's offset counts from
// `begin` (the start of a buffer that holds only the range, such as a ZeRO-1 shard of the
// AdamW moments) and its slabs are p's slabs cut to its rows and columns; `writes` is p's.
std::vector<LocalTensor> piecesInRange(const LocalTensor& p, size_t begin, size_t end);

// What one rank contributes to (and takes from) a checkpoint: the named tensors it holds and
// its flat fp32 buffers. m and v may be null (model-only loads: eval, generate, teacher; a save
// without them writes a model-only checkpoint). They must be null on every rank or on none.
// The model turns its parameters into this (src/inference/model_checkpoint.h); nothing here
// knows a model or a grid.
struct RankTensors {
  std::vector<TensorShape> all;     // every logical tensor, in file order (the save creates each)
  std::vector<LocalTensor> local;   // what this rank holds of the parameters
  float* params = nullptr;          // flat
  // What this rank holds of the AdamW moments (when m, v are given), as offsets into m and v:
  // `local` itself when every rank keeps the moments of all its parameters, or the pieces of
  // its ZeRO-1 shard (piecesInRange), each written and read by the rank that holds it, so no
  // rank ever needs the moments of a range it does not update. A load zeroes every piece's
  // elements before reading (vocabulary padding stays zero).
  std::vector<LocalTensor> moment_local;
  float* m = nullptr;               // AdamW first moment
  float* v = nullptr;               // AdamW second moment, laid out like m
};

struct CheckpointMeta {
  Attributes model;              // /model attributes: the model family's configuration
  std::string grid;              // "dp,pp,tp" at save time
  std::string config_ini;        // effective configuration
  std::string tokenizer_sha256;  // copied from the training shards
};

// Collective over MPI_COMM_WORLD. Writes RUN_DIR/checkpoints/step_NNNNNNNN.tmp/, fsyncs,
// renames, then replaces `latest` atomically; then deletes the oldest complete checkpoints
// beyond `keep` (never the one `best` names; keep <= 0 keeps all) and leftovers of crashed
// saves. Returns the step directory's path. A failure (disk full, ...) throws Error and leaves
// the previous checkpoints and `latest` as they were; a rank that fails inside collective I/O
// cannot tell the others, so its exception must end the job (main aborts all ranks).
// `world` (ProcessGrid::worldCollectives()): kdgrid's own collectives of the save (the
// agreements, the checksum all-reduces, the broadcasts around rank 0's file-system work) run
// under the collective watchdog, so a rank hung there is named; HDF5's collectives inside
// parallel I/O cannot be watched (core/world_collectives.h).
std::string saveCheckpoint(const std::string& run_dir, const CheckpointMeta& meta,
                           const TrainingState& state, const RankTensors& tensors, int keep,
                           const WorldCollectives& world = {});

// Points RUN_DIR/checkpoints/best at an existing complete step directory (rank 0 only).
void markBest(const std::string& run_dir, const std::string& step_dir);

// A checkpoint that cannot be read as it should (missing file, attribute or dataset, a shape
// the loading model does not have, a checksum mismatch): what loadCheckpoint and
// readCheckpointMeta throw, and what makes loadFirstIntact fall back to an older checkpoint.
class CheckpointError : public UsageError {
 public:
  using UsageError::UsageError;
};

// The step directories a CKPT argument names, in the order to try them.
struct CheckpointCandidates {
  std::string path;               // the CKPT argument
  std::vector<std::string> dirs;  // empty: a run directory without a checkpoint yet
  bool run_dir = false;           // a run directory: older ones are fallbacks
  bool latest_first = false;      // dirs[0] is what `latest` names
};

// Collective over MPI_COMM_WORLD; reads no tensor. A step_NNNNNNNN directory as is, or a run
// directory's `latest` then its other step directories, newest first (its checkpoints/
// directory is accepted too; `*.tmp` leftovers are never candidates; a missing or dangling
// `latest` is warned about). UsageError when `ckpt_or_run_dir` does not exist or is not a
// directory. Rank 0 looks at the file system and broadcasts what it found. `world`: as for
// saveCheckpoint.
CheckpointCandidates findCheckpoints(const std::string& ckpt_or_run_dir,
                                     const WorldCollectives& world = {});

// Collective over MPI_COMM_WORLD. Calls `load(step_dir)` on the candidates in order until one
// returns; `load` reads the checkpoint once (loadCheckpoint verifies what it reads) and throws
// CheckpointError, the same on every rank, when it is damaged. A named step directory that is
// damaged throws UsageError naming the dataset; in a run directory, a damaged one falls back to
// the next older with a warning from rank 0 (UsageError listing the problems when none is
// left). Returns the step directory loaded, or nullopt when there is no candidate.
std::optional<std::string> loadFirstIntact(
    const CheckpointCandidates& candidates,
    const std::function<void(const std::string& step_dir)>& load,
    const WorldCollectives& world = {});

// Collective over MPI_COMM_WORLD: findCheckpoints, then the first candidate that verifies
// whole (verify.h: every dataset read and its checksum recomputed, the work dealt over the
// ranks), as loadFirstIntact chooses. For `kdgrid ckpt inspect` and `export`, which vouch for
// the whole checkpoint; loading paths use loadFirstIntact with loadCheckpoint, which reads
// each byte once.
std::optional<std::string> resolveCheckpoint(const std::string& ckpt_or_run_dir,
                                             const WorldCollectives& world = {});

// Reads metadata (root and /model attributes) without loading tensors. Any rank, alone.
// CheckpointError naming the file and attribute when one is missing.
CheckpointMeta readCheckpointMeta(const std::string& step_dir);

// Collective over MPI_COMM_WORLD: fills this rank's slabs (and its moment pieces in m, v when
// non-null; vocabulary padding rows are zeroed) and returns the training state (a model-only load, m == v ==
// nullptr, reads only model.h5 and returns step and tokens_seen). Every dataset read is
// verified whole: the writing replicas' partial checksums are all-reduced. Throws CheckpointError
// (the same on every rank) naming the file and dataset when a file, attribute or dataset is
// missing, a shape differs, a dataset no rank holds, or a checksum does not match. Attributes
// that do not change shapes (n_head, attn_window): compare readCheckpointMeta().model yourself.
// `world`: as for saveCheckpoint.
TrainingState loadCheckpoint(const std::string& step_dir, const RankTensors& tensors,
                             const WorldCollectives& world = {});

}  // namespace kdgrid
