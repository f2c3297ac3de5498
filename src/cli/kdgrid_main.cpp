#include "src/cli/kdgrid_main.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "src/cli/commands.h"
#include "src/core/check.h"
#include "src/core/log.h"
#include "src/core/mpi_session.h"

namespace kdgrid {
namespace {

void printUsage() {
  std::printf("Usage: kdgrid SUBCOMMAND [options]   (kdgrid SUBCOMMAND --help for its options)\n\n");
  std::printf("Subcommands:\n");
  for (const auto& c : kCommands) std::printf("  %-14s %s\n", c.name, c.summary);
  std::printf("\nExit codes: 0 done, 1 failure, 2 usage/configuration/input error, "
              "75 stopped after a checkpoint (resumable).\n");
}

}  // namespace

int kdgridMain(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  try {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
      if (worldRank() == 0) printUsage();
      return argc < 2 ? kExitUsage : kExitOk;
    }
    for (const auto& c : kCommands) {
      if (argv[1] == std::string(c.name)) {
        return c.run(CommandLine{c.name, c.summary, std::vector<std::string>(argv + 2, argv + argc)});
      }
    }
    throw OptionError(fmt::format("unknown subcommand '{}' (see kdgrid --help)", argv[1]));
  } catch (const Error& e) {
    if (e.onEveryRank()) {
      // Same on every rank: report once, exit cleanly everywhere.
      if (worldRank() == 0) std::fprintf(stderr, "kdgrid: error: %s\n", e.what());
      return e.exitCode();
    }
    logRank("error: {}", e.what());
    MpiSession::abortAll(e.exitCode());
  } catch (const std::exception& e) {
    logRank("error: {} [{}]", e.what(), whereAmI());
    MpiSession::abortAll(kExitFailure);
  }
}

}  // namespace kdgrid
