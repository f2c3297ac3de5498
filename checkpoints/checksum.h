// Dataset checksums (DESIGN section 5): a function of a tensor's logical values alone, so a
// checkpoint written by any grid verifies the same way.
//
// checksum = sum over the row-major element index i of mix(i, bits(x_i)), mod 2^64, where
// bits(x) is the IEEE-754 float32 bit pattern and
//   mix(i, b) = fmix64(fmix64(i + 0x9e3779b97f4a7c15) ^ b)
// with fmix64 the MurmurHash3 64-bit finaliser. Each term depends on the position and the
// exact bits, and a sum does not care in which order or on which rank the terms were added:
// every rank sums the elements it wrote and one all-reduce (MPI_UINT64_T, MPI_SUM) gives the
// dataset's checksum.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kdgrid {

// Stored verbatim as the `checksum_algorithm` root attribute of model.h5 and optimizer.h5.
inline constexpr const char* kChecksumAlgorithm =
    "kdgrid-fmix64-sum-v1: sum mod 2^64 over row-major element index i of "
    "fmix64(fmix64(i + 0x9e3779b97f4a7c15) xor float32_bits(x_i)), "
    "fmix64 = MurmurHash3 64-bit finalizer";

// MurmurHash3's 64-bit finaliser: a bijection that mixes every input bit into every output bit.
inline uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return k;
}

// The term of one element: logical row-major index `index`, float32 bit pattern `bits`.
inline uint64_t checksumTerm(uint64_t index, uint32_t bits) {
  return fmix64(fmix64(index + 0x9e3779b97f4a7c15ull) ^ bits);
}

// Partial checksum of n consecutive elements starting at logical index `first_index`.
uint64_t checksumRun(const float* values, size_t n, uint64_t first_index);

// Partial checksum of a block of a [*, cols] row-major logical tensor: logical rows
// [row0, row0 + rows), columns [col0, col0 + ncols), read from `values` whose rows are
// `stride` elements apart.
uint64_t checksumBlock(const float* values, int64_t stride, int64_t row0, int64_t rows,
                       int64_t col0, int64_t ncols, int64_t cols);

}  // namespace kdgrid
