#include "src/distill/teacher.h"

#include <algorithm>

#include "src/core/log.h"
#include "src/tensor/staging.h"

namespace kdgrid {

Teacher findTeacher(const std::string& ckpt, const std::string& flag) {
  Teacher t;
  t.candidates = findCheckpoints(ckpt);
  KDGRID_OPTION_CHECK(!t.candidates.dirs.empty(), "{} {}: no checkpoint found", flag, ckpt);
  // The metadata of the first candidate that has readable metadata (loadTeacher reads and
  // verifies the tensors, and may fall back further).
  const std::optional<std::string> dir =
      loadFirstIntact(t.candidates, [&](const std::string& step_dir) {
        t.meta = readCheckpointMeta(step_dir);
        t.config = checkpointModel(t.meta, step_dir);
      });
  t.step_dir = *dir;
  return t;
}

void loadTeacher(Teacher& t, const std::string& flag, ProcessGrid& grid, DType compute, Runtime& rt,
                 const ModelConfig* student, const std::string& data_desc,
                 const std::string& data_sha256) {
  const ModelConfig& m = t.config;
  const std::string& ckpt = t.step_dir;
  KDGRID_OPTION_CHECK(
      data_sha256.empty() || t.meta.tokenizer_sha256 == data_sha256,
      "{} {} was trained on shards of tokenizer_sha256 '{}', but {} was tokenized with '{}': "
      "teacher and data must share one tokenizer",
      flag, ckpt, t.meta.tokenizer_sha256, data_desc, data_sha256);
  if (student != nullptr) {
    KDGRID_OPTION_CHECK(m.vocab_size == student->vocab_size,
                        "{} {} has vocab_size {}, but the student (--vocab-size, default: the "
                        "vocab_size of {}) has {}: teacher and student must share the vocabulary",
                        flag, ckpt, m.vocab_size, data_desc, student->vocab_size);
    KDGRID_OPTION_CHECK(m.max_seq >= student->max_seq,
                        "{} {} has max_seq {}, shorter than the student's --max-seq {}", flag, ckpt,
                        m.max_seq, student->max_seq);
  }
  KDGRID_OPTION_CHECK(m.n_head % grid.tp() == 0 && m.d_ff % grid.tp() == 0,
                      "{} {}: its n_head {} and d_ff {} must be divisible by --tp {}", flag, ckpt,
                      m.n_head, m.d_ff, grid.tp());
  KDGRID_OPTION_CHECK(m.n_layer >= grid.pp(), "{} {}: its {} layers cannot be split over --pp {}",
                      flag, ckpt, m.n_layer, grid.pp());
  log0("teacher {}: {}", t.step_dir, m.summary());
  // Forward only: full recompute keeps nothing but block inputs during a forward, which the
  // callers drop as soon as it returns. The teacher's gradient buffer stays unused.
  t.stage = std::make_unique<Gpt2Stage>(m, grid.pp(), grid.ppRank(), grid.tpComm(), compute,
                                        Recompute::kFull, rt);
  // Candidates from the one whose metadata findTeacher read; older ones must hold the same model.
  CheckpointCandidates candidates = t.candidates;
  const auto first = std::find(candidates.dirs.begin(), candidates.dirs.end(), t.step_dir);
  candidates.dirs.erase(candidates.dirs.begin(), first);
  if (first != t.candidates.dirs.begin()) candidates.latest_first = false;
  const std::string summary = m.summary();
  const std::optional<std::string> loaded = loadFirstIntact(
      candidates,
      [&](const std::string& step_dir) {
        const ModelConfig older = checkpointModel(readCheckpointMeta(step_dir), step_dir);
        if (older.summary() != summary) {
          throw CheckpointError(fmt::format("holds another model ({}) than {} ({})", older.summary(),
                                            t.step_dir, summary));
        }
        HostView params(t.stage->params(), /*load=*/false);
        loadCheckpoint(step_dir, rankTensorsFor(grid, t.stage->layout(), params.as<float>()),
                       grid.worldCollectives());
        params.store(t.stage->params());
      },
      grid.worldCollectives());
  t.step_dir = *loaded;
  t.stage->syncComputeWeights();
}

}  // namespace kdgrid
