// Whole-checkpoint integrity check (DESIGN section 5), independent of the grid that wrote it.
#pragma once

#include <optional>
#include <string>

#include "src/core/world_collectives.h"

namespace kdgrid {

// Collective over MPI_COMM_WORLD. Checks both files' headers, that they belong to the same
// step, and every tensor dataset: present, float32 of the model's shape, and read IN FULL to
// recompute its checksum (the datasets are dealt round-robin over the ranks, each read by one).
// Returns the first problem found (the same text on every rank, naming the file and
// dataset), or nullopt when the checkpoint is intact. `world`: how its agreement waits.
std::optional<std::string> verifyCheckpoint(const std::string& step_dir,
                                            const WorldCollectives& world = {});

}  // namespace kdgrid
