// The kdgrid binary users run: the subcommands on the CPU backend, no test hooks.
#include "src/cli/kdgrid_main.h"

int main(int argc, char** argv) {
  return kdgrid::kdgridMain(argc, argv);
}
