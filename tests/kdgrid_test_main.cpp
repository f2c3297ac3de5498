// kdgrid-test: the kdgrid binary plus what only tests may use. It registers the guarded test
// device (kernels/guarded/guarded_backend.h) as `--device guarded`, so every model command can
// run on memory the host code cannot touch and be compared bit for bit with `--device cpu`.
// KDGRID_GUARDED_POOL_MB sizes its address space (default 16384; pages are committed only as
// they are written).
#include <cstdlib>
#include <memory>

#include "kernels/guarded/guarded_backend.h"
#include "src/cli/kdgrid_main.h"
#include "src/tensor/backends.h"

int main(int argc, char** argv) {
  using namespace kdgrid;
  registerBackend("guarded", [] {
    const char* mb = std::getenv("KDGRID_GUARDED_POOL_MB");
    const size_t pool_mb = mb ? std::strtoull(mb, nullptr, 10) : 16384;
    return std::make_unique<guarded::GuardedBackend>(pool_mb << 20);
  });
  return kdgridMain(argc, argv);
}
