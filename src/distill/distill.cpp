#include "src/distill/distill.h"

#include "src/core/log.h"
#include "src/distill/offline_head.h"
#include "src/distill/online_head.h"
#include "src/distill/teacher.h"
#include "src/train/trainer.h"

namespace kdgrid {

int runDistillation(const TrainConfig& train, const ModelConfig& model, const GridConfig& grid,
                    const DistillConfig& distill, const ParsedOptions& options) {
  const KdParams kd = kdParams(distill);
  auto make_head = [&](TrainingSetup& s) -> std::unique_ptr<LossHead> {
    log0("distillation: {} at temperature {}, alpha {}", divergenceName(kd.divergence),
         kd.temperature, kd.alpha);
    if (!distill.teacher.empty()) {
      Teacher teacher = findTeacher(distill.teacher, "--teacher");
      loadTeacher(teacher, "--teacher", s.grid, s.compute, s.rt, &s.model, "--data " + s.train.data,
                  s.loader.tokenizerSha256());
      return std::make_unique<OnlineDistillHead>(s.student, std::move(teacher), s.grid.ppComm(),
                                                 s.grid.tpComm(), kd);
    }
    const std::vector<std::string> dirs = distill.teacherLogitsDirs();
    KDGRID_OPTION_CHECK(dirs.size() == s.sources.size(),
                        "--teacher-logits names {} directories but --data has {} sources: give "
                        "one top-k directory per --data directory, in the same order",
                        dirs.size(), s.sources.size());
    std::vector<std::unique_ptr<TopkStream>> streams;
    for (size_t i = 0; i < dirs.size(); ++i)
      streams.push_back(std::make_unique<TopkStream>(dirs[i], s.sources[i].dir));
    return std::make_unique<OfflineDistillHead>(s.student, s.grid.tpComm(), std::move(streams), kd,
                                                s.model.max_seq, s.train.batch_size);
  };
  return runTraining(train, model, grid, options, make_head);
}

}  // namespace kdgrid
