// A teacher model inside the student's process grid: the teacher's checkpoint is partitioned
// over the same pipeline stages and tensor-parallel ranks (its own n_layer split over pp, its
// own widths sliced over tp), forward only, weights frozen (they are never part of the
// student's parameters, optimizer state or checkpoints).
#pragma once

#include <memory>
#include <string>

#include "checkpoints/checkpoint.h"
#include "src/inference/model_checkpoint.h"
#include "src/model/config.h"
#include "src/model/gpt2.h"
#include "src/parallel/grid.h"
#include "src/tensor/runtime.h"

namespace kdgrid {

struct Teacher {
  CheckpointCandidates candidates;  // what the argument names (findCheckpoints)
  std::string step_dir;  // the checkpoint directory whose metadata was read, then loaded
  CheckpointMeta meta;
  ModelConfig config;  // the model meta describes
  std::unique_ptr<Gpt2Stage> stage;  // null until loadTeacher
};

// Collective. Finds the checkpoints `ckpt` names (step or run directory; OptionError naming
// `flag` when it holds none) and reads the metadata of the newest that has it; no tensor is
// read before loadTeacher.
Teacher findTeacher(const std::string& ckpt, const std::string& flag);

// Collective. Checks what the teacher must share with the student: the tokenizer
// (`data_sha256` of `data_desc`, skipped when empty), the vocabulary size and a context of at
// least the student's max_seq (`student`, after resolve; skipped when null); and that the grid
// can hold it (tp divides its heads and d_ff, pp <= its layers). Failures are OptionErrors
// (identical on every rank, exit 2) naming `flag`, the checkpoint and the data. Then builds
// this rank's teacher stage and loads its slices, reading them once (a damaged checkpoint of a
// run directory falls back to an older one of the same model, as loadFirstIntact does).
void loadTeacher(Teacher& teacher, const std::string& flag, ProcessGrid& grid, DType compute,
                 Runtime& rt, const ModelConfig* student, const std::string& data_desc,
                 const std::string& data_sha256);

}  // namespace kdgrid
