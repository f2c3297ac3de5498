// kdgrid-test: the `kdgrid` program (src/cli/kdgrid_main.h) with the test hooks installed
// (tests/test_hooks.h). Tests that inject faults run this binary ($KDGRID_TEST_BIN); users run
// build/kdgrid, which carries none of them.
#include "src/cli/kdgrid_main.h"
#include "tests/test_hooks.h"

int main(int argc, char** argv) {
  kdgrid::test::registerTestHooks();
  return kdgrid::kdgridMain(argc, argv);
}
