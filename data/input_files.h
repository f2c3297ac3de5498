// Expands --input arguments: a file stands for itself, a directory for every regular file in
// it (not recursive), sorted by name. Order is kept across arguments.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kdgrid {

// Throws UsageError naming `option` and the path when a path does not exist, is neither a
// file nor a directory, or is a directory without regular files.
std::vector<std::string> expandInputPaths(const std::vector<std::string>& paths,
                                          std::string_view option);

}  // namespace kdgrid
