// A child process for test_checkpoint: saves one checkpoint of a fixed model into RUN_DIR
// under a file-size limit, to exercise a save that fails in the middle of writing (the
// parent checks that the previous checkpoint and `latest` survive).
//
// usage: checkpoint_save_helper RUN_DIR STEP SLACK
//   SLACK < 0: no limit; else RLIMIT_FSIZE = the optimizer file's tensor bytes + SLACK, which
//   passes saveCheckpoint's up-front room check but not the file's metadata.
// Exit: 0 saved; the error's exit code (message on stderr) when the save failed.
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "checkpoints/checkpoint.h"
#include "src/core/mpi_session.h"
#include "src/inference/model_checkpoint.h"

int main(int argc, char** argv) {
  using namespace kdgrid;
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s RUN_DIR STEP SLACK\n", argv[0]);
    return 2;
  }
  MpiSession mpi(&argc, &argv);
  const std::string run_dir = argv[1];
  const int64_t step = std::atoll(argv[2]);
  const int64_t slack = std::atoll(argv[3]);

  // Tensor data well above the files' metadata, so the model file fits under the limit.
  ModelConfig c;
  c.n_layer = 2;
  c.n_head = 4;
  c.d_model = 64;
  c.d_ff = 256;
  c.vocab_size = 512;
  c.max_seq = 64;
  ParameterLayout layout(c, 1, 0, 1, 0);
  std::vector<float> params(layout.totalElements()), m(layout.totalElements(), 0.5f),
      v(layout.totalElements(), 0.25f);
  initializeParameters(layout, 7, params.data());
  const RankTensors t = modelTensors(layout, 0, 0, 0, params.data(), m.data(), v.data());
  const CheckpointMeta meta = checkpointMeta(c, "1,1,1", "", "");
  TrainingState state;
  state.step = step;

  if (slack >= 0) {
    uint64_t model_bytes = 0;
    for (const ParamSpec& s : gpt2ParamSpecs(c)) model_bytes += s.rows * s.cols * sizeof(float);
    signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG, as on a full disk
    struct rlimit limit {};
    getrlimit(RLIMIT_FSIZE, &limit);
    limit.rlim_cur = 2 * model_bytes + static_cast<uint64_t>(slack);
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  try {
    saveCheckpoint(run_dir, meta, state, t, 0);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    std::fflush(stderr);
    // HDF5 1.10 cannot shut down after failing to flush a file (HDFFV-11052: it crashes in
    // its exit handlers), so leave without running them.
    std::_Exit(e.exitCode());
  }
  std::printf("saved step %lld\n", static_cast<long long>(step));
  return 0;
}
