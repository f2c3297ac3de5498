// How `prepare` deals documents into splits and shards (DESIGN section 2). Pure functions of
// the document list, so every rank count computes the same plan.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kdgrid {

// --val-fraction F sends every k-th document to validation, k = round(1 / F); F must lie in
// (0, 0.5] so that k >= 2. Returns 0 when F is out of range.
uint64_t validationPeriod(double val_fraction);

// Document d (0-based, in input order) is a validation document when d % k == k - 1: the k-th,
// 2k-th, ... documents.
inline bool isValidationDoc(uint64_t doc, uint64_t period) {
  return doc % period == period - 1;
}

// Packs consecutive items with sizes `sizes` into groups, in order, never splitting an item: a
// group closes as soon as its total reaches `target` (so every group but the last holds at
// least `target`, and any group exceeds it by less than its last item). Returns the group
// boundaries: group g holds items [bounds[g], bounds[g + 1]); bounds = {0} when `sizes` is empty.
std::vector<uint64_t> packConsecutive(std::span<const uint64_t> sizes, uint64_t target);

}  // namespace kdgrid
