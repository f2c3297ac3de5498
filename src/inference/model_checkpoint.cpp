#include "src/inference/model_checkpoint.h"

#include <fmt/format.h>

#include <filesystem>

#include "src/core/check.h"

namespace kdgrid {

RankTensors modelTensors(const ParameterLayout& layout, int dp_rank, int tp_rank, int pp_rank,
                         float* params, const RankMoments& moments) {
  RankTensors t;
  for (const ParamSpec& spec : gpt2ParamSpecs(layout.config()))
    t.all.push_back({spec.name, spec.rows, spec.cols});
  // Which replica writes, over tp and pp; dp decides below (parameters: rank 0).
  std::vector<bool> writer;
  for (const LocalParam& p : layout.params()) {
    LocalTensor l;
    l.logical = {p.spec.name, p.spec.rows, p.spec.cols};
    l.local_rows = p.local_rows;
    l.local_cols = p.local_cols;
    l.slabs = p.slabs;
    l.offset = p.offset;
    writer.push_back((!p.tp_replicated || tp_rank == 0) && (p.spec.name != "tok_emb" || pp_rank == 0));
    l.writes = dp_rank == 0 && writer.back();
    t.local.push_back(std::move(l));
  }
  t.params = params;
  if (moments.m != nullptr) {
    KDGRID_CHECK(moments.v != nullptr, "modelTensors needs both m and v");
    KDGRID_CHECK(moments.sharded ||
                     (moments.begin == 0 && moments.end == layout.totalElements()),
                 "unsharded moments must cover the whole flat buffer [0, {}), not [{}, {})",
                 layout.totalElements(), moments.begin, moments.end);
    for (size_t i = 0; i < t.local.size(); ++i) {
      LocalTensor whole = t.local[i];
      whole.writes = (moments.sharded || dp_rank == 0) && writer[i];
      for (LocalTensor& piece : piecesInRange(whole, moments.begin, moments.end))
        t.moment_local.push_back(std::move(piece));
    }
    t.m = moments.m;
    t.v = moments.v;
  }
  return t;
}

RankTensors modelTensors(const ParameterLayout& layout, int dp_rank, int tp_rank, int pp_rank,
                         float* params, float* m, float* v) {
  return modelTensors(layout, dp_rank, tp_rank, pp_rank, params,
                      RankMoments{m, v, 0, layout.totalElements(), false});
}

RankTensors rankTensorsFor(const ProcessGrid& grid, const ParameterLayout& layout, float* params,
                           const RankMoments& moments) {
  return modelTensors(layout, grid.dpRank(), grid.tpRank(), grid.ppRank(), params, moments);
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
