// The model as a checkpoint sees it: its parameters as named logical tensors and slabs
// (checkpoints/checkpoint.h), its configuration as /model attributes. checkpoints/ knows no
// model and no grid; this is where the two meet.
#pragma once

#include <string>

#include "checkpoints/checkpoint.h"
#include "src/model/config.h"
#include "src/model/params.h"
#include "src/parallel/grid.h"

namespace kdgrid {

// A rank's AdamW moments: m and v hold the range [begin, end) of its flat parameter buffer
// (begin 0 and end = the buffer's size without ZeRO-1; its shard with). `sharded` (ZeRO-1):
// the ranges of the data-parallel ranks partition the buffer, and each rank writes (and
// counts) the moments of its own range; otherwise data-parallel rank 0 writes them all.
struct RankMoments {
  float* m = nullptr;
  float* v = nullptr;
  size_t begin = 0, end = 0;
  bool sharded = false;
};

// A rank's parameters (and AdamW moments, when given) as checkpoint tensors, for the rank at
// (dp_rank, tp_rank, pp_rank). One replica writes each element: data-parallel rank 0 (of
// sharded moments, the rank whose range holds it); of a tensor replicated over tensor
// parallelism, tp rank 0; of tok_emb (held by the first and the last pipeline stage), the
// first stage. Ranks that each hold the whole model (export, import) pass their world rank as
// dp_rank.
RankTensors modelTensors(const ParameterLayout& layout, int dp_rank, int tp_rank, int pp_rank,
                         float* params, const RankMoments& moments = {});
// The same with moments m, v over the whole flat buffer (null: none).
RankTensors modelTensors(const ParameterLayout& layout, int dp_rank, int tp_rank, int pp_rank,
                         float* params, float* m, float* v);
// modelTensors at this rank's grid coordinates.
RankTensors rankTensorsFor(const ProcessGrid& grid, const ParameterLayout& layout, float* params,
                           const RankMoments& moments = {});

// The metadata of a checkpoint of `model`.
CheckpointMeta checkpointMeta(const ModelConfig& model, const std::string& grid,
                              const std::string& config_ini, const std::string& tokenizer_sha256);

// The model a checkpoint's metadata describes; UsageError naming the step directory's model.h5
// and the attribute when one is missing or out of range.
ModelConfig checkpointModel(const CheckpointMeta& meta, const std::string& step_dir);

}  // namespace kdgrid
