#include "augment/output_dir.h"

#include <filesystem>

#include "src/core/agreement.h"
#include "src/core/check.h"
#include "src/core/log.h"

namespace kdgrid::augment {

namespace fs = std::filesystem;

void prepareOutputDir(const std::string& out) {
  std::error_code ec;
  fs::create_directories(out, ec);
  KDGRID_INPUT_CHECK(!ec && fs::is_directory(out), "--out: cannot create directory '{}': {}", out,
                     ec ? ec.message() : "a file is in the way");
  for (const auto& entry : fs::directory_iterator(out, ec)) {
    const std::string name = entry.path().filename().string();
    KDGRID_INPUT_CHECK(entry.path().extension() != ".h5",
                       "--out: '{}' already holds shards ('{}'); remove them or choose another "
                       "--out",
                       out, name);
    if (name.ends_with(".h5.part") || name.ends_with(".h5.part.tmp")) {
      fs::remove(entry.path(), ec);
      logRank("augment: removed '{}', left by an interrupted run", entry.path().string());
    }
  }
  KDGRID_INPUT_CHECK(!ec, "--out: cannot list '{}': {}", out, ec.message());
}

void removeFiles(const std::vector<std::string>& paths) noexcept {
  for (const std::string& path : paths) {
    std::error_code ec;
    fs::remove(path, ec);
    fs::remove(path + ".tmp", ec);  // the shard writers' own temporary name
  }
}

void publishParts(const std::vector<std::string>& parts) {
  std::vector<std::string> finals;
  try {
    agreeOnOutcome([&] {
      for (const std::string& part : parts) {
        const std::string final_path = part.substr(0, part.size() - (sizeof(kPartSuffix) - 1));
        std::error_code ec;
        fs::rename(part, final_path, ec);
        KDGRID_CHECK(!ec, "cannot rename '{}' to '{}': {}", part, final_path, ec.message());
        finals.push_back(final_path);
      }
    });
  } catch (...) {
    removeFiles(parts);
    removeFiles(finals);
    throw;
  }
}

}  // namespace kdgrid::augment
