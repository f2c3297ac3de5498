// Activation recomputation of a pipeline stage (--recompute), an enum option (src/core/options.h).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "src/core/options.h"

namespace kdgrid {

enum class Recompute : uint8_t {
  kNone,       // keep every activation backward needs
  kSelective,  // drop the MLP's [N, d_ff] activations (fc1 output, GELU output); recompute them
  kFull,       // keep only each block's input; recompute the whole block in backward
};

inline constexpr EnumWord<Recompute> kRecomputeWords[] = {
    {Recompute::kNone, "none"}, {Recompute::kSelective, "selective"}, {Recompute::kFull, "full"}};
void validate(boost::any& out, const std::vector<std::string>& args, Recompute*, int);
std::ostream& operator<<(std::ostream& os, Recompute recompute);

}  // namespace kdgrid
