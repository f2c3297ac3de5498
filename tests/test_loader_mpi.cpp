// Data loader under mpirun: each rank is one data-parallel rank (dp = world size); together
// they must hold exactly the global batch a single dp = 1 loader reads, step after step,
// across epoch boundaries. Rank 0 writes the shards; every rank reads them.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include "data/loader.h"
#include "tests/loader_test_util.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

TEST(LoaderMpi, RanksHoldTheGlobalBatch) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  test::TempDir dir;
  if (rank == 0) {
    test::writeRecognisableSource(dir / "a", 0, {200, 173});
    test::writeRecognisableSource(dir / "b", 1, {90});
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const std::vector<DataSource> sources = {{dir / "a", 1.0}, {dir / "b", 1.0}};
  for (uint32_t grad_accum : {1u, 2u}) {
    SCOPED_TRACE(fmt::format("grad_accum {}", grad_accum));
    LoaderConfig mine;
    mine.sources = sources;
    mine.seq_len = 6;
    mine.micro_batch = 2;
    mine.grad_accum = grad_accum;
    mine.seed = 21;
    mine.dp = static_cast<uint32_t>(world);
    mine.dp_rank = static_cast<uint32_t>(rank);
    LoaderConfig single = mine;
    single.micro_batch = 2 * static_cast<uint32_t>(world);
    single.dp = 1;
    single.dp_rank = 0;
    DataLoader local(mine, {});
    DataLoader reference(single, {});
    for (int step = 0; step < 10; ++step) {
      const StepBatch b = local.next();
      const StepBatch g = reference.next();
      ASSERT_EQ(b.tokens.size() * world, g.tokens.size());
      std::vector<uint32_t> gathered(g.tokens.size());
      MPI_Gather(b.tokens.data(), static_cast<int>(b.tokens.size()), MPI_UINT32_T, gathered.data(),
                 static_cast<int>(b.tokens.size()), MPI_UINT32_T, 0, MPI_COMM_WORLD);
      if (rank == 0) {
        EXPECT_TRUE(gathered == g.tokens) << "step " << step + 1;
      }
      EXPECT_EQ(b.cursor_after, g.cursor_after);
      test::identifyWindows(b.tokens, 6);
    }
  }
}

}  // namespace
}  // namespace kdgrid
