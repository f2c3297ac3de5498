#include "checkpoints/format.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "checkpoints/checksum.h"
#include "data/h5_parallel.h"

namespace kdgrid {

std::vector<uint64_t> datasetShape(const TensorShape& shape) {
  if (shape.cols == 1) return {static_cast<uint64_t>(shape.rows)};
  return {static_cast<uint64_t>(shape.rows), static_cast<uint64_t>(shape.cols)};
}

void writeFormatAttributes(h5::File& file) {
  file.writeStringAttribute("format", kCheckpointFormat);
  file.writeIntAttribute("format_version", kCheckpointFormatVersion);
  file.writeStringAttribute("checksum_algorithm", kChecksumAlgorithm);
}

void checkFormatAttributes(const h5::File& file) {
  const std::string format = file.readStringAttribute("format");
  if (format != kCheckpointFormat) {
    file.fail(fmt::format("format is '{}', expected '{}'", format, kCheckpointFormat));
  }
  const int64_t version = file.readIntAttribute<int64_t>("format_version");
  if (version != kCheckpointFormatVersion) {
    file.fail(fmt::format("format_version {} is not supported (this build reads version {})",
                          version, kCheckpointFormatVersion));
  }
  const std::string algorithm = file.readStringAttribute("checksum_algorithm");
  if (algorithm != kChecksumAlgorithm) {
    file.fail(fmt::format("unknown checksum_algorithm '{}'", algorithm));
  }
}

void writeModelHeader(h5::File& file, h5::Group& model_group, const CheckpointMeta& meta,
                      const TrainingState& state) {
  writeFormatAttributes(file);
  file.writeIntAttribute("step", state.step);
  file.writeIntAttribute("tokens_seen", state.tokens_seen);
  file.writeStringAttribute("grid", meta.grid);
  file.writeStringAttribute("config", meta.config_ini);
  file.writeStringAttribute("tokenizer_sha256", meta.tokenizer_sha256);
  for (const Attribute& a : meta.model) model_group.writeAttribute(a.name, a.value);
}

ModelHeader readModelHeader(const h5::File& file) {
  checkFormatAttributes(file);
  ModelHeader h;
  h.step = file.readIntAttribute<int64_t>("step");
  h.tokens_seen = file.readIntAttribute<int64_t>("tokens_seen");
  if (h.step < 0 || h.tokens_seen < 0) file.fail("step and tokens_seen must not be negative");
  h.meta.grid = file.readStringAttribute("grid");
  h.meta.config_ini = file.readStringAttribute("config");
  h.meta.tokenizer_sha256 = file.readStringAttribute("tokenizer_sha256");
  const h5::Group model = file.openGroup(kModelGroup);
  for (const std::string& name : model.attributeNames())
    h.meta.model.push_back({name, model.readAttribute(name)});
  return h;
}

void writeOptimizerHeader(h5::File& file, const TrainingState& state) {
  writeFormatAttributes(file);
  file.writeIntAttribute("step", state.step);
  file.writeIntAttribute("tokens_seen", state.tokens_seen);
  file.writeFloatAttribute("loss_scale", state.loss_scale);
  file.writeIntAttribute("good_steps", state.good_steps);
  file.writeIntAttribute("adam_steps", state.adam_steps);
  file.writeFloatAttribute("best_val_loss", state.best_val_loss);
  h5::writeUInt64Attribute(file, "cursor_epoch", state.cursor.epoch);
  h5::writeUInt64Attribute(file, "cursor_position", state.cursor.position);
}

TrainingState readOptimizerHeader(const h5::File& file) {
  checkFormatAttributes(file);
  TrainingState s;
  s.step = file.readIntAttribute<int64_t>("step");
  s.tokens_seen = file.readIntAttribute<int64_t>("tokens_seen");
  s.loss_scale = static_cast<float>(file.readFloatAttribute("loss_scale"));
  s.good_steps = file.readIntAttribute<int64_t>("good_steps");
  // Checkpoints written before adam_steps existed counted every step as an update.
  s.adam_steps = file.hasAttribute("adam_steps") ? file.readIntAttribute<int64_t>("adam_steps")
                                                 : s.step;
  s.best_val_loss = file.readFloatAttribute("best_val_loss");
  s.cursor.epoch = file.readIntAttribute<uint64_t>("cursor_epoch");
  s.cursor.position = file.readIntAttribute<uint64_t>("cursor_position");
  if (s.step < 0 || s.tokens_seen < 0 || s.good_steps < 0) {
    file.fail("step, tokens_seen and good_steps must not be negative");
  }
  if (s.adam_steps < 0 || s.adam_steps > s.step) {
    file.fail(fmt::format("adam_steps {} is not in [0, step {}]", s.adam_steps, s.step));
  }
  if (!(s.loss_scale > 0) || !std::isfinite(s.loss_scale)) {
    file.fail(fmt::format("loss_scale {} is not a positive finite number", s.loss_scale));
  }
  return s;
}

h5::Dataset openTensor(const h5::Group& group, const TensorShape& shape) {
  h5::Dataset ds = group.openDataset(shape.name);
  if (!ds.type().isFloat() || ds.type().size != 4) {
    ds.fail(fmt::format("is {}, expected float32", ds.type().describe()));
  }
  const std::vector<uint64_t> expected = datasetShape(shape);
  if (ds.dims() != expected) {
    ds.fail(fmt::format("has shape [{}], but the model needs [{}]", fmt::join(ds.dims(), ", "),
                        fmt::join(expected, ", ")));
  }
  if (!ds.hasAttribute(kChecksumAttribute)) ds.fail("has no checksum attribute");
  return ds;
}

}  // namespace kdgrid
