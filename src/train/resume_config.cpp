#include "src/train/resume_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <optional>
#include <vector>

#include "checkpoints/checkpoint.h"
#include "src/core/log.h"
#include "src/inference/model_checkpoint.h"

namespace kdgrid {
namespace {

// The option that sets a /model attribute: n_layer -> n-layer.
std::string optionFor(std::string attribute) {
  std::replace(attribute.begin(), attribute.end(), '_', '-');
  return attribute;
}

// The seed the checkpoint's training configuration records; nullopt when it records none.
std::optional<uint64_t> recordedSeed(const CheckpointMeta& meta, const std::string& step_dir) {
  const std::vector<std::string> values = iniValues(meta.config_ini, "seed");
  if (values.empty()) return std::nullopt;
  uint64_t seed = 0;
  const std::string& text = values.front();
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seed);
  if (error != std::errc() || end != text.data() + text.size()) {
    throw UsageError(
        fmt::format("HDF5 file '{}', attribute 'config': seed '{}' is not an "
                    "unsigned integer",
                    (std::filesystem::path(step_dir) / "model.h5").string(), text));
  }
  return seed;
}

}  // namespace

std::optional<CheckpointCandidates> resumeCandidates(const std::string& run_dir, bool no_resume,
                                                     const WorldCollectives& world) {
  if (no_resume) return std::nullopt;
  std::error_code ec;
  int exists = worldRank() == 0 && std::filesystem::exists(run_dir, ec) ? 1 : 0;
  world.broadcast(&exists, 1, MPI_INT, 0);
  if (!exists) return std::nullopt;  // a new run: findCheckpoints would call it missing
  CheckpointCandidates candidates = findCheckpoints(run_dir, world);
  if (candidates.dirs.empty()) return std::nullopt;
  return candidates;
}

void adoptCheckpointConfig(const std::string& step_dir, ModelConfig& model, uint64_t& seed,
                           ParsedOptions& options) {
  const CheckpointMeta meta = readCheckpointMeta(step_dir);
  const Attributes ours = modelAttributes(model);
  std::string ini = options.ini;
  std::vector<std::string> conflicts;
  for (const Attribute& theirs : meta.model) {
    const std::string option = optionFor(theirs.name);
    if (options.has(option) && !options.isGiven(option)) {
      setIniValue(ini, option, attributeText(theirs.value));
      continue;
    }
    const AttributeValue* value = findAttribute(ours, theirs.name);
    if (value && *value == theirs.value) continue;
    const std::string our_text = value ? attributeText(*value) : std::string("(none)");
    conflicts.push_back(options.has(option)
                            ? fmt::format("--{} {} differs from the checkpoint's {} {}", option,
                                          our_text, theirs.name, attributeText(theirs.value))
                            : fmt::format("the checkpoint's {} {} differs from this command's {}",
                                          theirs.name, attributeText(theirs.value), our_text));
  }
  const std::optional<uint64_t> recorded = recordedSeed(meta, step_dir);
  if (recorded && options.isGiven("seed") && seed != *recorded) {
    conflicts.push_back(
        fmt::format("--seed {} differs from the checkpoint's seed {}", seed, *recorded));
  }
  if (!conflicts.empty()) {
    throw OptionError(
        fmt::format("{} ({}): a resumed run continues its checkpoint; leave these "
                    "flags out, or start afresh with --no-resume or another "
                    "--run-dir",
                    fmt::join(conflicts, "; "), step_dir));
  }
  // Every attribute now agrees or is the checkpoint's: the model is the checkpoint's.
  model = checkpointModel(meta, step_dir);
  if (recorded && !options.isGiven("seed")) {
    seed = *recorded;
    setIniValue(ini, "seed", fmt::format("{}", seed));
  }
  options.ini = std::move(ini);
}

}  // namespace kdgrid
