// The whole `kdgrid` program behind main(): the binary users run (src/cli/main.cpp) and the test
// executable (tests/kdgrid_test_main.cpp, which installs its test hooks first) both call it.
#pragma once

namespace kdgrid {

// Owns MPI and the error policy: errors are thrown anywhere, caught here, printed once, and
// end every rank. Returns the process exit code (DESIGN section 2).
int kdgridMain(int argc, char** argv);

}  // namespace kdgrid
