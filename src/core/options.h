// Command-line and INI parsing shared by every subcommand.
//
// Each subcommand builds one boost::program_options description from option groups (one
// per concern), calls parseOptions(), then its options struct's validate(). Every option can
// also come from an INI file given with --config FILE (flat `name = value` lines; repeat a
// name for a list); flags on the command line win over the file.
#pragma once

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <cstddef>
#include <iosfwd>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "src/core/check.h"
#include "src/core/dtype.h"

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

// po::value(field) with *field as its default, shown by --help as a person writes it: fmt's
// shortest form that reads back to the same value ("0.0003" for 3e-4, "0.8" for 0.8f), where
// Boost's lexical_cast writes every digit of a double ("0.00029999999999999997"). Use it for
// floating-point options.
template <typename T>
po::typed_value<T>* valueWithDefault(T* field) {
  return po::value(field)->default_value(*field, fmt::format("{}", *field));
}

// Enum options. Each enum lists its words once, as an array of EnumWord, and declares beside
// itself, in its own namespace (Boost.Program_options finds them by argument-dependent lookup):
//   void validate(boost::any& out, const std::vector<std::string>& args, E*, int);
//     -> parseEnumWord(out, args, kWords): a bad word is a usage error naming the option and
//        listing the valid words, at parse time (command line and --config alike)
//   std::ostream& operator<<(std::ostream& os, E value);   -> os << enumWord(value, kWords)
//     (--help's default, and dumpIni's config.ini text)
// Bind the option with enumValue(&field) so that dumpIni can write it.
template <typename E>
struct EnumWord {
  E value;
  const char* word;
};

template <typename E, size_t N>
const char* enumWord(E value, const EnumWord<E> (&words)[N]) {
  for (const EnumWord<E>& w : words) {
    if (w.value == value) return w.word;
  }
  return "?";
}

template <typename E, size_t N>
void parseEnumWord(boost::any& out, const std::vector<std::string>& args,
                   const EnumWord<E> (&words)[N]) {
  po::validators::check_first_occurrence(out);
  const std::string& word = po::validators::get_single_string(args);
  std::string valid;
  for (const EnumWord<E>& w : words) {
    if (word == w.word) {
      out = w.value;
      return;
    }
    valid += (valid.empty() ? "" : " | ") + std::string(w.word);
  }
  po::invalid_option_value error(word);  // Boost adds the option's name as it passes by
  error.m_error_template =
      "the argument ('%value%') for option '%canonical_option%' is invalid (valid: " + valid + ")";
  throw error;
}

// A bound option whose stored value dumpIni cannot name by type (an enum): it prints itself.
class PrintableValue {
 public:
  virtual ~PrintableValue() = default;
  virtual std::string print(const boost::any& value) const = 0;
};

template <typename E>
class EnumValue final : public po::typed_value<E>, public PrintableValue {
 public:
  explicit EnumValue(E* store) : po::typed_value<E>(store) {}
  std::string print(const boost::any& value) const override {
    std::ostringstream text;
    text << boost::any_cast<E>(value);
    return text.str();
  }
};

// po::value(&field) for an enum field (see above).
template <typename E>
EnumValue<E>* enumValue(E* store) {
  return new EnumValue<E>(store);
}

// --precision: fp32 | bf16 | fp16, as DType.
inline constexpr EnumWord<DType> kPrecisionWords[] = {
    {DType::kF32, "fp32"}, {DType::kBF16, "bf16"}, {DType::kF16, "fp16"}};
void validate(boost::any& out, const std::vector<std::string>& args, DType*, int);
std::ostream& operator<<(std::ostream& os, DType dtype);

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
