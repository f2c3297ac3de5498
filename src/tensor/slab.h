// How a rank's local tensor maps onto the logical (unsharded) one. Every tensor is seen as
// 2-D [rows, cols] (a vector is [n, 1]); the model decides the split (src/model/params.h),
// checkpoints read and write through it whatever the grid (checkpoints/checkpoint.h).
#pragma once

#include <cstdint>

namespace kdgrid {

// Logical rows [row0, row0 + rows) and columns [col0, col0 + cols) are local rows
// [local_row0, local_row0 + rows), columns [0, cols) of the row-major local tensor.
struct Slab {
  int64_t row0, rows, col0, cols, local_row0;
};

}  // namespace kdgrid
