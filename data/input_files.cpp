#include "data/input_files.h"

#include <algorithm>
#include <filesystem>

#include "src/core/check.h"

namespace kdgrid {

std::vector<std::string> expandInputPaths(const std::vector<std::string>& paths,
                                          std::string_view option) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const auto& path : paths) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    KDGRID_INPUT_CHECK(fs::exists(status), "{}: '{}' does not exist", option, path);
    if (fs::is_regular_file(status)) {
      files.push_back(path);
      continue;
    }
    KDGRID_INPUT_CHECK(fs::is_directory(status), "{}: '{}' is neither a file nor a directory",
                       option, path);
    std::vector<std::string> in_dir;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec)) in_dir.push_back(it->path().string());
    }
    KDGRID_INPUT_CHECK(!ec, "{}: cannot list directory '{}': {}", option, path, ec.message());
    KDGRID_INPUT_CHECK(!in_dir.empty(), "{}: directory '{}' holds no regular files", option, path);
    std::sort(in_dir.begin(), in_dir.end());
    files.insert(files.end(), in_dir.begin(), in_dir.end());
  }
  return files;
}

}  // namespace kdgrid
