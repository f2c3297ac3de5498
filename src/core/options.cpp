#include "src/core/options.h"

#include <fmt/format.h>

#include <cstdint>
#include <fstream>
#include <iostream>
#include <ostream>
#include <sstream>

#include "src/core/log.h"

namespace kdgrid {

bool parseOptions(const CommandLine& cmd, const po::options_description& options,
                  po::variables_map& vm, const po::positional_options_description* positional) {
  po::options_description meta("General");
  std::string config_file;
  meta.add_options()("help,h", "print this help and exit")(
      "config", po::value(&config_file)->value_name("FILE"),
      "read options from an INI file (name = value per line); flags win");
  po::options_description all;
  all.add(meta).add(options);

  try {
    po::command_line_parser parser(cmd.args);
    parser.options(all).style(po::command_line_style::default_style &
                              ~po::command_line_style::allow_guessing);
    if (positional) parser.positional(*positional);
    // Stored first, so the command line wins over the INI file (store keeps the first value).
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      if (worldRank() == 0) {
        std::cout << "Usage: kdgrid " << cmd.command << " [options]\n"
                  << cmd.summary << "\n\n"
                  << all << "\n";
      }
      return false;
    }
    if (vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      std::ifstream in(path);
      if (!in) throw OptionError(fmt::format("--config: cannot open '{}'", path));
      po::store(po::parse_config_file(in, options, /*allow_unregistered=*/false), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw OptionError(fmt::format("kdgrid {}: {} (see kdgrid {} --help)", cmd.command, e.what(),
                                  cmd.command));
  }
  return true;
}

namespace {

// Formats one stored value; program_options keeps values as boost::any.
bool formatValue(const boost::any& value, std::vector<std::string>& out) {
  auto one = [&](auto v) { out.push_back(fmt::format("{}", v)); };
  if (auto p = boost::any_cast<std::string>(&value)) return one(*p), true;
  if (auto p = boost::any_cast<int>(&value)) return one(*p), true;
  if (auto p = boost::any_cast<int64_t>(&value)) return one(*p), true;
  if (auto p = boost::any_cast<uint64_t>(&value)) return one(*p), true;
  if (auto p = boost::any_cast<uint32_t>(&value)) return one(*p), true;
  if (auto p = boost::any_cast<double>(&value)) return one(*p), true;
  if (auto p = boost::any_cast<float>(&value)) return one(*p), true;
  if (auto p = boost::any_cast<bool>(&value)) return one(*p ? "true" : "false"), true;
  if (auto p = boost::any_cast<std::vector<std::string>>(&value)) {
    for (const auto& s : *p) out.push_back(s);
    return true;
  }
  return false;
}

}  // namespace

void validate(boost::any& out, const std::vector<std::string>& args, DType*, int) {
  parseEnumWord(out, args, kPrecisionWords);
}

std::ostream& operator<<(std::ostream& os, DType dtype) {
  return os << enumWord(dtype, kPrecisionWords);
}

std::string dumpIni(const po::options_description& options, const po::variables_map& vm) {
  std::ostringstream ini;
  for (const auto& option : options.options()) {
    const std::string& name = option->long_name();
    auto it = vm.find(name);
    if (it == vm.end() || it->second.empty()) {
      ini << "# " << name << " (unset)\n";
      continue;
    }
    std::vector<std::string> values;
    if (auto printable = dynamic_cast<const PrintableValue*>(option->semantic().get())) {
      values.push_back(printable->print(it->second.value()));  // enumValue(): an enum's word
    } else {
      KDGRID_CHECK(formatValue(it->second.value(), values),
                   "dumpIni: option --{} has a type it cannot print", name);
    }
    for (const auto& v : values) ini << name << " = " << v << "\n";
  }
  return ini.str();
}

ParsedOptions parsedOptions(const po::options_description& options, const po::variables_map& vm) {
  ParsedOptions parsed{dumpIni(options, vm), {}, {}};
  for (const auto& option : options.options()) {
    const std::string& name = option->long_name();
    parsed.names.insert(name);
    // A default (or a bool_switch left off) is `defaulted`; a value from --config is not.
    if (vm.count(name) && !vm[name].defaulted()) parsed.given.insert(name);
  }
  return parsed;
}

std::vector<std::string> iniValues(const std::string& ini, const std::string& name) {
  std::istringstream in(ini);
  // No option registered: every `name = value` line comes back as an unregistered option.
  const po::parsed_options parsed =
      po::parse_config_file(in, po::options_description(), /*allow_unregistered=*/true);
  std::vector<std::string> values;
  for (const po::option& o : parsed.options) {
    if (o.string_key == name) values.insert(values.end(), o.value.begin(), o.value.end());
  }
  return values;
}

void setIniValue(std::string& ini, const std::string& name, const std::string& value) {
  const std::string assigned = name + " = ", unset = "# " + name + " (unset)";
  std::istringstream in(ini);
  std::ostringstream out;
  bool written = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(assigned, 0) == 0 || line == unset) {
      if (!written) out << assigned << value << "\n";
      written = true;
    } else {
      out << line << "\n";
    }
  }
  if (!written) out << assigned << value << "\n";
  ini = out.str();
}

}  // namespace kdgrid
