#include "checkpoints/checksum.h"

#include <cstring>

namespace kdgrid {

uint64_t checksumRun(const float* values, size_t n, uint64_t first_index) {
  uint64_t sum = 0;  // wraps mod 2^64 by definition
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, sizeof(bits));
    sum += checksumTerm(first_index + i, bits);
  }
  return sum;
}

uint64_t checksumBlock(const float* values, int64_t stride, int64_t row0, int64_t rows,
                       int64_t col0, int64_t ncols, int64_t cols) {
  uint64_t sum = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const uint64_t first = static_cast<uint64_t>((row0 + r) * cols + col0);
    sum += checksumRun(values + r * stride, static_cast<size_t>(ncols), first);
  }
  return sum;
}

}  // namespace kdgrid
