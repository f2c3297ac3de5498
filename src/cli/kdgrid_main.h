// The whole of a kdgrid binary after start-up: MPI, the subcommand, the error policy. The
// user binary (main.cpp) calls it as is; the test binary (tests/kdgrid_test_main.cpp)
// registers its test backends and hooks first.
#pragma once

namespace kdgrid {

int kdgridMain(int argc, char** argv);

}  // namespace kdgrid
