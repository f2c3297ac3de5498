// Command-line and INI parsing shared by every subcommand.
//
// Each subcommand builds one boost::program_options description from option groups (one
// per concern), calls parseOptions(), then its options struct's validate(). Every option can
// also come from an INI file given with --config FILE (flat `name = value` lines; repeat a
// name for a list); flags on the command line win over the file.
#pragma once

#include <boost/program_options.hpp>

#include <set>
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

// A parsed command as a run records it and checks it against a checkpoint it resumes from: the
// effective configuration, and which options the user chose rather than left at their defaults.
struct ParsedOptions {
  std::string ini;              // dumpIni(): every option, one `name = value` line
  std::set<std::string> names;  // every option's long name ("n-layer", "seed", ...)
  std::set<std::string> given;  // those set on the command line or in --config

  bool has(const std::string& name) const { return names.count(name) != 0; }
  bool isGiven(const std::string& name) const { return given.count(name) != 0; }
};
ParsedOptions parsedOptions(const po::options_description& options, const po::variables_map& vm);

// The values of option `name` in INI text (as dumpIni writes and --config reads it), in order;
// empty when the text does not set it.
std::vector<std::string> iniValues(const std::string& ini, const std::string& name);

// Sets the single-valued option `name` to `value` in INI text written by dumpIni: its line (or
// its "# name (unset)" line) is replaced, further lines of it dropped; appended when absent.
void setIniValue(std::string& ini, const std::string& name, const std::string& value);

}  // namespace kdgrid
