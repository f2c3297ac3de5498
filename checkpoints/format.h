// The checkpoint file format (DESIGN section 5): names, shapes and header attributes of
// model.h5 and optimizer.h5, shared by the writer, the loader and the verifier.
//
//   model.h5      root: format, format_version, step, tokens_seen, grid, config,
//                       tokenizer_sha256, checksum_algorithm
//                 /model: the model family's attributes (architecture, n_layer, ...: written
//                         and read as they come, src/model/config.h); one float32 dataset per
//                         parameter (full logical shape)
//   optimizer.h5  root: format, format_version, step, tokens_seen, loss_scale, good_steps,
//                       adam_steps, best_val_loss, cursor_epoch, cursor_position, checksum_algorithm
//                 /m/NAME, /v/NAME: AdamW moments (absent in a model-only checkpoint)
// Every tensor dataset carries a uint64 `checksum` attribute (checksum.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoints/checkpoint.h"
#include "data/h5.h"

namespace kdgrid {

inline constexpr const char* kCheckpointFormat = "kdgrid-checkpoint";
inline constexpr int64_t kCheckpointFormatVersion = 1;
inline constexpr const char* kModelFileName = "model.h5";
inline constexpr const char* kOptimizerFileName = "optimizer.h5";
inline constexpr const char* kModelGroup = "model";
inline constexpr const char* kFirstMomentGroup = "m";
inline constexpr const char* kSecondMomentGroup = "v";
inline constexpr const char* kChecksumAttribute = "checksum";

// The dataset shape of a parameter: [rows] for a vector (cols == 1), else [rows, cols].
std::vector<uint64_t> datasetShape(const TensorShape& shape);

// Writes format, format_version and checksum_algorithm on a file's root.
void writeFormatAttributes(h5::File& file);
// Checks them: a UsageError naming the file when they are missing or differ.
void checkFormatAttributes(const h5::File& file);


// model.h5's root and /model attributes (the /model group must exist).
struct ModelHeader {
  CheckpointMeta meta;
  int64_t step = 0;
  int64_t tokens_seen = 0;
};
void writeModelHeader(h5::File& file, h5::Group& model_group, const CheckpointMeta& meta,
                      const TrainingState& state);
ModelHeader readModelHeader(const h5::File& file);

// optimizer.h5's root attributes.
void writeOptimizerHeader(h5::File& file, const TrainingState& state);
TrainingState readOptimizerHeader(const h5::File& file);

// Opens group/NAME and checks it is float32 of the expected shape with a checksum attribute;
// a UsageError naming the file and dataset otherwise.
h5::Dataset openTensor(const h5::Group& group, const TensorShape& shape);

}  // namespace kdgrid
