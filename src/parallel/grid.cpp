#include "src/parallel/grid.h"

#include <unistd.h>

#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "src/core/check.h"
#include "src/tensor/backends.h"

namespace kdgrid {

po::options_description gridOptions(GridConfig& c) {
  po::options_description o("Process grid (world size = dp * pp * tp)");
  o.add_options()
    ("dp", po::value(&c.dp)->default_value(c.dp), "data-parallel ranks (0 = world / (pp * tp))")
    ("pp", po::value(&c.pp)->default_value(c.pp), "pipeline stages")
    ("tp", po::value(&c.tp)->default_value(c.tp), "tensor-parallel ranks")
    ("zero", po::value(&c.zero)->default_value(c.zero),
     "1 = shard AdamW state over data-parallel ranks (ZeRO-1)")
    ("collective-timeout", valueWithDefault(&c.collective_timeout),
     "seconds any communication may wait before the job fails naming the operation and the "
     "ranks that did not arrive (0 = wait forever)")
    ("device", po::value(&c.device)->default_value(c.device)->value_name("NAME"),
     ("backend to compute on: " + fmt::format("{}", fmt::join(backendNames(), ", "))).c_str());
  return o;
}

void GridConfig::resolve(int world_size) {
  backendNamed(device);  // an unknown name is a usage error naming --device
  KDGRID_OPTION_CHECK(pp >= 1, "--pp must be >= 1 (got {})", pp);
  KDGRID_OPTION_CHECK(tp >= 1, "--tp must be >= 1 (got {})", tp);
  KDGRID_OPTION_CHECK(dp >= 0, "--dp must be >= 0 (got {})", dp);
  KDGRID_OPTION_CHECK(zero == 0 || zero == 1, "--zero must be 0 or 1 (got {})", zero);
  KDGRID_OPTION_CHECK(collective_timeout >= 0 && std::isfinite(collective_timeout),
                      "--collective-timeout must be >= 0 seconds (got {})", collective_timeout);
  if (dp == 0) {
    KDGRID_OPTION_CHECK(world_size % (pp * tp) == 0,
                        "--pp {} x --tp {} does not divide the world size {} (mpirun -np)", pp,
                        tp, world_size);
    dp = world_size / (pp * tp);
  }
  KDGRID_OPTION_CHECK(dp * pp * tp == world_size,
                      "--dp {} x --pp {} x --tp {} = {} but {} MPI ranks are running", dp, pp, tp,
                      dp * pp * tp, world_size);
}

ProcessGrid::ProcessGrid(const GridConfig& c) : dp_(c.dp), pp_(c.pp), tp_(c.tp) {
  const WatchdogConfig watchdog{c.collective_timeout};
  int world_size = 0;
  KDGRID_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
  KDGRID_MPI(MPI_Comm_size(MPI_COMM_WORLD, &world_size));
  KDGRID_CHECK(dp_ * pp_ * tp_ == world_size, "grid {}x{}x{} does not match world {}", dp_, pp_,
               tp_, world_size);
  tp_rank_ = world_rank_ % tp_;
  dp_rank_ = (world_rank_ / tp_) % dp_;
  pp_rank_ = world_rank_ / (tp_ * dp_);

  auto split = [&](const char* axis, int color, int key) {
    MPI_Comm comm;
    KDGRID_MPI(MPI_Comm_split(MPI_COMM_WORLD, color, key, &comm));
    return std::make_unique<MpiCommunicator>(axis, comm, watchdog);
  };
  tp_comm_ = split("tp", pp_rank_ * dp_ + dp_rank_, tp_rank_);
  dp_comm_ = split("dp", pp_rank_ * tp_ + tp_rank_, dp_rank_);
  pp_comm_ = split("pp", dp_rank_ * tp_ + tp_rank_, pp_rank_);
  world_comm_ = std::make_unique<MpiCommunicator>("world", MPI_COMM_WORLD, watchdog);
  {
    const bool holds_embedding = pp_ > 1 && (pp_rank_ == 0 || pp_rank_ == pp_ - 1);
    MPI_Comm comm;
    KDGRID_MPI(MPI_Comm_split(MPI_COMM_WORLD, holds_embedding ? dp_rank_ * tp_ + tp_rank_ : MPI_UNDEFINED,
                              pp_rank_, &comm));
    if (comm != MPI_COMM_NULL) emb_comm_ = std::make_unique<MpiCommunicator>("emb", comm, watchdog);
  }
  KDGRID_CHECK(tp_comm_->rank() == tp_rank_ && dp_comm_->rank() == dp_rank_ &&
                   pp_comm_->rank() == pp_rank_,
               "communicator ranks disagree with grid coordinates");

  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  std::vector<char> all(static_cast<size_t>(world_size) * sizeof(host));
  KDGRID_MPI(MPI_Allgather(host, sizeof(host), MPI_CHAR, all.data(), sizeof(host), MPI_CHAR,
                           MPI_COMM_WORLD));
  for (int r = 0; r < world_size; ++r) hosts_.emplace_back(all.data() + r * sizeof(host));
  setGridCoordinates(coordinates());
}

std::string ProcessGrid::coordinates() const {
  return fmt::format("dp {}, pp {}, tp {}", dp_rank_, pp_rank_, tp_rank_);
}

std::string ProcessGrid::describe() const {
  std::string s = fmt::format("grid dp={} pp={} tp={} ({} ranks)\n", dp_, pp_, tp_, dp_ * pp_ * tp_);
  auto group = [&](const char* axis, auto rank_of, int n_groups, int group_size) {
    s += fmt::format("  {} groups:", axis);
    for (int g = 0; g < n_groups; ++g) {
      s += " [";
      for (int i = 0; i < group_size; ++i) s += fmt::format("{}{}", i ? " " : "", rank_of(g, i));
      s += "]";
    }
    s += "\n";
  };
  group("tp", [&](int g, int i) { return g * tp_ + i; }, dp_ * pp_, tp_);
  group("dp", [&](int g, int i) { return rankOf(i, g / tp_, g % tp_); }, pp_ * tp_, dp_);
  group("pp", [&](int g, int i) { return rankOf(g / tp_, i, g % tp_); }, dp_ * tp_, pp_);
  s += "  hosts:";
  for (size_t r = 0; r < hosts_.size(); ++r) s += fmt::format(" {}={}", r, hosts_[r]);
  return s;
}

}  // namespace kdgrid
