#include "src/inference/model_checkpoint.h"

#include <fmt/format.h>

#include <filesystem>

namespace kdgrid {

RankTensors modelTensors(const ParameterLayout& layout, int dp_rank, int tp_rank, int pp_rank,
                         float* params, float* m, float* v) {
  RankTensors t;
  for (const ParamSpec& spec : gpt2ParamSpecs(layout.config()))
    t.all.push_back({spec.name, spec.rows, spec.cols});
  for (const LocalParam& p : layout.params()) {
    LocalTensor l;
    l.logical = {p.spec.name, p.spec.rows, p.spec.cols};
    l.local_rows = p.local_rows;
    l.local_cols = p.local_cols;
    l.slabs = p.slabs;
    l.offset = p.offset;
    l.writes = dp_rank == 0 && (!p.tp_replicated || tp_rank == 0) &&
               (p.spec.name != "tok_emb" || pp_rank == 0);
    t.local.push_back(std::move(l));
  }
  t.params = params;
  t.m = m;
  t.v = v;
  return t;
}

RankTensors rankTensorsFor(const ProcessGrid& grid, const ParameterLayout& layout, float* params,
                           float* m, float* v) {
  return modelTensors(layout, grid.dpRank(), grid.tpRank(), grid.ppRank(), params, m, v);
}

CheckpointMeta checkpointMeta(const ModelConfig& model, const std::string& grid,
                              const std::string& config_ini, const std::string& tokenizer_sha256) {
  return {modelAttributes(model), grid, config_ini, tokenizer_sha256};
}

ModelConfig checkpointModel(const CheckpointMeta& meta, const std::string& step_dir) {
  try {
    return modelConfigFromAttributes(meta.model);
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("HDF5 file '{}', group '/model': {}",
                                 (std::filesystem::path(step_dir) / "model.h5").string(),
                                 e.what()));
  }
}

}  // namespace kdgrid
