#include "src/inference/inference_model.h"

#include "src/core/log.h"
#include "src/tensor/staging.h"

namespace kdgrid {

InferenceModel loadInferenceModel(const std::string& ckpt, GridConfig grid_config, Runtime& rt,
                                  DType compute) {
  InferenceModel m;
  std::optional<std::string> dir = resolveCheckpoint(ckpt);
  KDGRID_INPUT_CHECK(dir.has_value(), "--checkpoint {}: no checkpoint found", ckpt);
  m.step_dir = *dir;
  m.meta = readCheckpointMeta(m.step_dir);
  m.config = checkpointModel(m.meta, m.step_dir);
  resolveGridFor(grid_config, worldSize(), m.config);
  m.grid = std::make_unique<ProcessGrid>(grid_config);
  m.model = std::make_unique<Gpt2Stage>(m.config, grid_config.pp, m.grid->ppRank(),
                                        m.grid->tpComm(), compute, Recompute::kNone, rt);
  // One replica per tensor must count it towards the checksum check (rankTensorsFor).
  HostView params(m.model->params(), /*load=*/false);
  const RankTensors tensors = rankTensorsFor(*m.grid, m.model->layout(), params.as<float>());
  m.state = loadCheckpoint(m.step_dir, tensors, m.grid->worldCollectives());
  params.store(m.model->params());
  m.model->syncComputeWeights();
  return m;
}

}  // namespace kdgrid
