// kdgrid teacher-logits: run a teacher over token shards and write its top-k next-token
// log-probabilities as kdgrid-teacher-topk shards (DESIGN sections 2, 6) for offline
// distillation (`kdgrid distill --teacher-logits DIR`).
#include "src/cli/commands.h"
#include "src/distill/teacher_logits.h"
#include "src/parallel/grid.h"

namespace kdgrid {

int runTeacherLogits(const CommandLine& cmd) {
  TeacherLogitsConfig config;
  GridConfig grid;
  po::options_description options;
  options.add(teacherLogitsOptions(config)).add(gridOptions(grid));
  po::variables_map vm;
  if (!parseOptions(cmd, options, vm)) return kExitOk;
  config.validate();
  writeTeacherLogits(config, grid);
  return kExitOk;
}

}  // namespace kdgrid
