// kdgrid ckpt inspect CKPT: a checkpoint's metadata and tensors (after verifying checksums).
#include <cstdio>

#include "checkpoints/checkpoint.h"
#include "checkpoints/format.h"
#include "data/h5.h"
#include "src/cli/commands.h"
#include "src/core/log.h"
#include "src/inference/model_checkpoint.h"
#include "src/model/params.h"

namespace kdgrid {
namespace {

// Every root attribute of `file` but the long INI text, one per line.
void printAttributes(const h5::File& file, const char* indent) {
  for (const std::string& name : file.attributeNames()) {
    if (name == "config") continue;
    std::printf("%s%s = %s\n", indent, name.c_str(), file.readAttributeAsText(name).c_str());
  }
}

}  // namespace

int runCkpt(const CommandLine& cmd) {
  std::string action, checkpoint;
  bool show_config = false;
  po::options_description options("Checkpoint");
  options.add_options()
    ("action", po::value(&action)->value_name("inspect"), "what to do: inspect")
    ("checkpoint", po::value(&checkpoint)->value_name("CKPT"), "step directory or run directory")
    ("show-config", po::bool_switch(&show_config), "also print the configuration it was saved with");
  po::positional_options_description positional;
  positional.add("action", 1).add("checkpoint", 1);
  po::variables_map vm;
  if (!parseOptions(cmd, options, vm, &positional)) return kExitOk;
  KDGRID_OPTION_CHECK(action == "inspect", "kdgrid ckpt: unknown action '{}' (expected: inspect)",
                      action);
  KDGRID_OPTION_CHECK(!checkpoint.empty(), "kdgrid ckpt inspect: give a CKPT (step or run directory)");

  // Verifies every dataset's checksum (a damaged step directory exits 2 naming the dataset).
  const std::optional<std::string> dir = resolveCheckpoint(checkpoint);
  KDGRID_INPUT_CHECK(dir.has_value(), "{}: no checkpoint found", checkpoint);
  if (worldRank() != 0) return kExitOk;
  const CheckpointMeta meta = readCheckpointMeta(*dir);
  std::printf("checkpoint %s (checksums verified)\n", dir->c_str());
  std::printf("model: %s\n", checkpointModel(meta, *dir).summary().c_str());
  const h5::File model = h5::File::openRead(*dir + "/" + kModelFileName);
  std::printf("%s:\n", kModelFileName);
  printAttributes(model, "  ");
  const h5::File optimizer = h5::File::openRead(*dir + "/" + kOptimizerFileName);
  std::printf("%s:\n", kOptimizerFileName);
  printAttributes(optimizer, "  ");
  std::printf("tensors (/%s; /%s and /%s in %s have the same shapes):\n", kModelGroup,
              kFirstMomentGroup, kSecondMomentGroup, kOptimizerFileName);
  const h5::Group group = model.openGroup(kModelGroup);
  for (const std::string& name : group.datasetNames()) {
    const h5::Dataset ds = group.openDataset(name);
    std::string shape;
    for (uint64_t d : ds.dims()) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    std::printf("  %-28s [%s] float32  checksum %s\n", name.c_str(), shape.c_str(),
                ds.readAttributeAsText(kChecksumAttribute).c_str());
  }
  if (show_config) std::printf("config:\n%s", meta.config_ini.c_str());
  return kExitOk;
}

}  // namespace kdgrid
