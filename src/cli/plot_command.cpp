// kdgrid plot: a run directory's metrics.jsonl (DESIGN section 3) as one PNG drawn by gnuplot:
// losses (train loss, val_loss on evaluation steps, kl when distilling), learning rate and
// throughput against the optimizer step. The data go through a temporary directory holding a
// whitespace-separated data file and a gnuplot script, removed afterwards.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/cli/commands.h"
#include "src/core/log.h"

extern char** environ;

namespace kdgrid {
namespace {

namespace fs = std::filesystem;

// The Debian package that provides a gnuplot with the pngcairo terminal and no X11.
constexpr const char* kGnuplotPackage = "gnuplot-nox";

// The metrics of one run, keyed by step. A step written twice (a run that crashed after its last
// checkpoint and was resumed) keeps its later record, the one the resumed run went on from.
using StepRecords = std::map<int64_t, nlohmann::json>;

StepRecords readMetrics(const fs::path& path) {
  std::ifstream in(path);
  KDGRID_INPUT_CHECK(in.good(), "--run-dir: {} not found (has the run made a step yet?)",
                     path.string());
  StepRecords records;
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    KDGRID_INPUT_CHECK(record.is_object() && record.contains("step") &&
                           record["step"].is_number_integer(),
                       "{} line {}: not a JSON object with an integer \"step\"", path.string(),
                       line_no);
    const int64_t step = record["step"].get<int64_t>();
    records[step] = std::move(record);
  }
  KDGRID_INPUT_CHECK(!records.empty(), "{}: no steps to plot", path.string());
  return records;
}

// A value of `record` as gnuplot reads it: the number, or NaN (no point) when absent.
std::string field(const nlohmann::json& record, const char* name) {
  auto it = record.find(name);
  if (it == record.end() || !it->is_number()) return "NaN";
  return fmt::format("{:.9g}", it->get<double>());
}

bool anyRecordHas(const StepRecords& records, const char* name) {
  for (const auto& [step, record] : records) {
    if (record.contains(name) && record[name].is_number()) return true;
  }
  return false;
}

// A path as a single-quoted gnuplot string (a quote inside is written twice).
std::string gnuplotQuoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

// Data file: block 0 holds every step (step loss kl lr tokens_per_s), block 1 only the
// evaluation steps (step val_loss), so the validation curve joins its points across the gaps.
void writeData(const fs::path& path, const StepRecords& records) {
  std::ofstream out(path);
  out << "# step loss kl lr tokens_per_s\n";
  for (const auto& [step, r] : records) {
    out << step << ' ' << field(r, "loss") << ' ' << field(r, "kl") << ' ' << field(r, "lr") << ' '
        << field(r, "tokens_per_s") << '\n';
  }
  out << "\n\n# step val_loss\n";
  bool any = false;
  for (const auto& [step, r] : records) {
    if (!r.contains("val_loss") || !r["val_loss"].is_number()) continue;
    out << step << ' ' << field(r, "val_loss") << '\n';
    any = true;
  }
  if (!any) out << "NaN NaN\n";  // an empty block would shift gnuplot's block numbering
  KDGRID_CHECK(out.good(), "writing {}", path.string());
}

void writeScript(const fs::path& path, const fs::path& data, const std::string& png,
                 const std::string& title, const StepRecords& records) {
  const std::string d = gnuplotQuoted(data.string());
  std::string losses = fmt::format("{} index 0 using 1:2 with lines lw 1.5 title 'train loss'", d);
  if (anyRecordHas(records, "kl")) {
    losses += fmt::format(", {} index 0 using 1:3 with lines lw 1.5 title 'kl'", d);
  }
  if (anyRecordHas(records, "val_loss")) {
    losses += fmt::format(", {} index 1 using 1:2 with linespoints lw 1.5 pt 7 ps 0.6 "
                          "title 'val loss'", d);
  }
  std::ofstream out(path);
  out << "set terminal pngcairo size 1000,1000 font 'sans,10'\n"
      << "set output " << gnuplotQuoted(png) << "\n"
      << "set datafile missing 'NaN'\n"
      << "set grid\n"
      << "set key top right opaque\n"
      << "set multiplot layout 3,1 title " << gnuplotQuoted(title) << "\n"
      << "set xlabel 'step'\n"
      << "set ylabel 'loss (nats)'\n"
      << "plot " << losses << "\n"
      << "set ylabel 'learning rate'\n"
      << "set format y '%.1e'\n"
      << "plot " << d << " index 0 using 1:4 with lines lw 1.5 notitle\n"
      << "set ylabel 'tokens/s'\n"
      << "set format y '%.1s%c'\n"
      << "plot " << d << " index 0 using 1:5 with lines lw 1.5 notitle\n"
      << "unset multiplot\n";
  KDGRID_CHECK(out.good(), "writing {}", path.string());
}

// The gnuplot executable on PATH, or "" when there is none.
std::string findGnuplot() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  size_t begin = 0;
  while (begin <= dirs.size()) {
    size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(begin, end - begin);
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/gnuplot";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    begin = end + 1;
  }
  return "";
}

// Runs `gnuplot SCRIPT` (its messages go to our stderr); returns its exit status.
int runGnuplot(const std::string& gnuplot, const fs::path& script) {
  std::string arg0 = gnuplot, arg1 = script.string();
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = 0;
  const int err = ::posix_spawn(&pid, gnuplot.c_str(), nullptr, nullptr, argv, environ);
  KDGRID_CHECK(err == 0, "cannot start {}: {}", gnuplot, std::strerror(err));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    KDGRID_CHECK(errno == EINTR, "waiting for gnuplot: {}", std::strerror(errno));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A fresh temporary directory, removed with everything in it when this goes out of scope.
class TempDirectory {
 public:
  TempDirectory() {
    std::string pattern = (fs::temp_directory_path() / "kdgrid-plot-XXXXXX").string();
    KDGRID_CHECK(::mkdtemp(pattern.data()) != nullptr, "mkdtemp {}: {}", pattern,
                 std::strerror(errno));
    path_ = pattern;
  }
  ~TempDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

int runPlot(const CommandLine& cmd) {
  std::string run_dir, out;
  po::options_description options("Plot");
  options.add_options()
    ("run-dir", po::value(&run_dir)->value_name("DIR"), "run directory holding metrics.jsonl")
    ("out", po::value(&out)->value_name("FILE.png"), "PNG to write (default DIR/metrics.png)");
  po::variables_map vm;
  if (!parseOptions(cmd, options, vm)) return kExitOk;
  KDGRID_OPTION_CHECK(!run_dir.empty(), "--run-dir is required");
  if (out.empty()) out = (fs::path(run_dir) / "metrics.png").string();
  if (worldRank() != 0) return kExitOk;  // one picture, drawn once

  const fs::path metrics = fs::path(run_dir) / "metrics.jsonl";
  const StepRecords records = readMetrics(metrics);
  const std::string gnuplot = findGnuplot();
  KDGRID_INPUT_CHECK(!gnuplot.empty(),
                     "kdgrid plot needs gnuplot, which is not on PATH: install Debian's {} "
                     "(apt-get install {})", kGnuplotPackage, kGnuplotPackage);

  TempDirectory tmp;
  const fs::path data = tmp.path() / "metrics.dat";
  const fs::path script = tmp.path() / "plot.gp";
  writeData(data, records);
  const std::string title = fmt::format("{}: steps {}..{}", fs::path(run_dir).filename().string(),
                                        records.begin()->first, records.rbegin()->first);
  writeScript(script, data, out, title, records);
  std::error_code ec;
  fs::remove(out, ec);  // so a stale picture cannot pass for a new one
  const int rc = runGnuplot(gnuplot, script);
  KDGRID_CHECK(rc == 0, "gnuplot exited {} drawing {} (does it have the pngcairo terminal? "
               "Debian's {} does)", rc, out, kGnuplotPackage);
  KDGRID_CHECK(fs::exists(out) && fs::file_size(out) > 0, "gnuplot wrote no picture to {}", out);
  log0("plotted {} steps of {} to {}", records.size(), metrics.string(), out);
  return kExitOk;
}

}  // namespace kdgrid
