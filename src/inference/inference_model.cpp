#include "src/inference/inference_model.h"

#include "src/core/log.h"
#include "src/tensor/staging.h"

namespace kdgrid {

InferenceModel loadInferenceModel(const std::string& ckpt, GridConfig grid_config, Runtime& rt,
                                  DType compute) {
  InferenceModel m;
  // One read: the load verifies what it reads; a damaged `latest` falls back to older ones
  // (each try builds the model its checkpoint describes).
  const std::optional<std::string> dir = loadFirstIntact(
      findCheckpoints(ckpt), [&](const std::string& step_dir) {
        m.step_dir = step_dir;
        m.meta = readCheckpointMeta(m.step_dir);
        m.config = checkpointModel(m.meta, m.step_dir);
        GridConfig gc = grid_config;
        resolveGridFor(gc, worldSize(), m.config);
        m.model.reset();  // an earlier try's model uses the earlier grid's communicators
        m.grid = std::make_unique<ProcessGrid>(gc);
        m.model = std::make_unique<Gpt2Stage>(m.config, gc.pp, m.grid->ppRank(), m.grid->tpComm(),
                                              compute, Recompute::kNone, rt);
        // One replica per tensor must count it towards the checksum check (rankTensorsFor).
        HostView params(m.model->params(), /*load=*/false);
        const RankTensors tensors = rankTensorsFor(*m.grid, m.model->layout(), params.as<float>());
        m.state = loadCheckpoint(m.step_dir, tensors, m.grid->worldCollectives());
        params.store(m.model->params());
      });
  KDGRID_INPUT_CHECK(dir.has_value(), "--checkpoint {}: no checkpoint found", ckpt);
  m.model->syncComputeWeights();
  return m;
}

}  // namespace kdgrid
