// Command-line and INI parsing shared by every subcommand.
//
// Each subcommand builds one boost::program_options description from option groups (one
// per concern), calls parseOptions(), then its options struct's validate(). Every option can
// also come from an INI file given with --config FILE (flat `name = value` lines; repeat a
// name for a list); flags on the command line win over the file.
#pragma once

#include <boost/program_options.hpp>

#include <string>
#include <vector>

#include "src/core/check.h"

namespace kdgrid {

namespace po = boost::program_options;

// A usage error that every rank detects identically (bad flag, failed validate()), so rank 0
// alone reports it and all ranks exit 2 without an MPI_Abort.
class OptionError : public UsageError {
 public:
  explicit OptionError(const std::string& message) : UsageError(message, /*on_every_rank=*/true) {}
};

// KDGRID_OPTION_CHECK(cond, fmt, args...): a cross-field check in validate(); the message names
// the option(s).
#define KDGRID_OPTION_CHECK(cond, ...)                                                           \
  do {                                                                                           \
    if (!(cond)) [[unlikely]]                                                                    \
      throw ::kdgrid::OptionError(::fmt::format(__VA_ARGS__));                                  \
  } while (0)

struct CommandLine {
  std::string command;  // "tokenizer", "prepare", ...
  std::string summary;  // one line for --help
  std::vector<std::string> args;  // arguments after the subcommand name
};

// Parses cmd.args (plus --help and --config) into `vm` and runs notifiers, so values land in
// the structs bound to the options. Returns false after printing --help (rank 0 only).
// Throws OptionError naming the offending option.
bool parseOptions(const CommandLine& cmd, const po::options_description& options,
                  po::variables_map& vm,
                  const po::positional_options_description* positional = nullptr);

// The effective configuration as INI text: every option of `options`, one `name = value`
// line (lists as repeated lines), readable back with --config.
std::string dumpIni(const po::options_description& options, const po::variables_map& vm);

}  // namespace kdgrid
