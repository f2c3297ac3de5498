// The 3D process grid (DESIGN section 7): world = dp * pp * tp, global rank =
// (pp_idx * dp + dp_idx) * tp + tp_idx (tensor parallel fastest, so a tensor-parallel group
// sits on one node). One communicator per axis, from MPI_Comm_split.
#pragma once

#include <memory>
#include <string>

#include "src/core/options.h"
#include "src/core/world_collectives.h"
#include "src/parallel/communicator.h"

namespace kdgrid {

struct GridConfig {
  int dp = 0;  // 0 = world size / (pp * tp)
  int pp = 1;
  int tp = 1;
  int zero = 0;  // 1: ZeRO-1 (optimizer state sharded over dp)
  // Seconds a collective or point-to-point wait may take before the job fails naming the
  // operation and the silent ranks (WatchdogConfig); 0 = wait forever (plain blocking MPI).
  double collective_timeout = 300;
  // The backend every rank computes on (src/tensor/backends.h): "cpu", or what the binary
  // registered.
  std::string device = "cpu";

  // Resolves dp and checks the grid against the world size (the model's own checks:
  // resolveGridFor, src/model/config.h). Runs before any collective and gives the same verdict
  // on every rank (OptionError naming the options).
  void resolve(int world_size);
};

// --dp --pp --tp --zero --collective-timeout --device
po::options_description gridOptions(GridConfig& config);

class ProcessGrid {
 public:
  // `config` must be resolved. Collective over MPI_COMM_WORLD (the three splits).
  explicit ProcessGrid(const GridConfig& config);

  int dp() const { return dp_; }
  int pp() const { return pp_; }
  int tp() const { return tp_; }
  int dpRank() const { return dp_rank_; }
  int ppRank() const { return pp_rank_; }
  int tpRank() const { return tp_rank_; }
  int worldRank() const { return world_rank_; }
  bool firstStage() const { return pp_rank_ == 0; }
  bool lastStage() const { return pp_rank_ == pp_ - 1; }

  Communicator& dpComm() { return *dp_comm_; }
  Communicator& ppComm() { return *pp_comm_; }
  Communicator& tpComm() { return *tp_comm_; }
  Communicator& world() { return *world_comm_; }
  // First and last pipeline stage of this (dp, tp) position, which both hold tok_emb (the
  // tied LM head) and sum its gradient; null on middle stages and when pp == 1.
  Communicator* embeddingComm() { return emb_comm_.get(); }
  // kdgrid's own collectives over MPI_COMM_WORLD outside the step (agreements, checkpoint save
  // and load), under the world communicator's watchdog when --collective-timeout > 0.
  WorldCollectives worldCollectives() const {
    return WorldCollectives(world_comm_->watchdog().timeout_s > 0 ? world_comm_.get() : nullptr);
  }

  // Global rank of the process at the given coordinates.
  int rankOf(int dp_idx, int pp_idx, int tp_idx) const { return (pp_idx * dp_ + dp_idx) * tp_ + tp_idx; }
  // "dp 1, pp 0, tp 1"
  std::string coordinates() const;
  // Multi-line description for rank 0 at start: each axis's groups and every rank's host.
  std::string describe() const;

 private:
  int dp_, pp_, tp_;
  int dp_rank_, pp_rank_, tp_rank_, world_rank_;
  std::unique_ptr<MpiCommunicator> dp_comm_, pp_comm_, tp_comm_, world_comm_, emb_comm_;
  std::vector<std::string> hosts_;  // by global rank
};

}  // namespace kdgrid
