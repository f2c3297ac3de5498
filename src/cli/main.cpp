// kdgrid: one binary, one subcommand per job (src/cli/commands.h). It carries no test hooks:
// build/kdgrid-test (tests/kdgrid_test_main.cpp) is the same program with them installed.
#include "src/cli/kdgrid_main.h"

int main(int argc, char** argv) { return kdgrid::kdgridMain(argc, argv); }
