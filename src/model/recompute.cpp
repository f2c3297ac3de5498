#include "src/model/recompute.h"

#include <ostream>

namespace kdgrid {

void validate(boost::any& out, const std::vector<std::string>& args, Recompute*, int) {
  parseEnumWord(out, args, kRecomputeWords);
}

std::ostream& operator<<(std::ostream& os, Recompute recompute) {
  return os << enumWord(recompute, kRecomputeWords);
}

}  // namespace kdgrid
