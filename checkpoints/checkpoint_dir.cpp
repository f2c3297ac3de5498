#include "checkpoints/checkpoint_dir.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "src/core/check.h"
#include "src/core/log.h"

namespace kdgrid {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStepPrefix = "step_";
constexpr size_t kStepDigits = 8;
constexpr size_t kMaxPointerBytes = 4096;  // a pointer holds one short name

// Runs a POSIX call that returns -1 on failure; throws Error naming `what` and `path`.
void checkSys(int rc, const char* what, const std::string& path) {
  KDGRID_CHECK(rc != -1, "{} '{}': {}", what, path, std::strerror(errno));
}

}  // namespace

std::string checkpointsDir(const std::string& run_dir) {
  return (fs::path(run_dir) / "checkpoints").string();
}

std::string stepDirName(int64_t step) {
  KDGRID_CHECK(step >= 0, "negative step {}", step);
  return fmt::format("{}{:0{}}", kStepPrefix, step, kStepDigits);
}

std::optional<int64_t> parseStepDirName(const std::string& name) {
  const size_t prefix = std::strlen(kStepPrefix);
  if (name.size() < prefix + kStepDigits || name.compare(0, prefix, kStepPrefix) != 0)
    return std::nullopt;
  if (name.size() > prefix + 18) return std::nullopt;  // would overflow int64
  int64_t step = 0;
  for (size_t i = prefix; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

std::vector<std::string> listStepDirs(const std::string& ckpt_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(ckpt_dir, ec)) return {};
  for (const fs::directory_entry& e : fs::directory_iterator(ckpt_dir, ec)) {
    const std::string name = e.path().filename().string();
    const auto step = parseStepDirName(name);
    if (step && e.is_directory(ec)) found.emplace_back(*step, name);
  }
  KDGRID_CHECK(!ec, "cannot list checkpoint directory '{}': {}", ckpt_dir, ec.message());
  // Newest first; equal steps (step_00000001 vs step_000000001) by name, for a stable order.
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second > b.second;
  });
  std::vector<std::string> names;
  for (auto& [step, name] : found) names.push_back(std::move(name));
  return names;
}

std::optional<std::string> readPointer(const std::string& ckpt_dir, const std::string& which) {
  const fs::path path = fs::path(ckpt_dir) / which;
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  KDGRID_INPUT_CHECK(in.good(), "cannot read checkpoint pointer file '{}'", path.string());
  std::string text(kMaxPointerBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  KDGRID_INPUT_CHECK(parseStepDirName(text).has_value(),
                     "checkpoint pointer file '{}' does not hold a step_NNNNNNNN name",
                     path.string());
  return text;
}

void fsyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  checkSys(fd, "cannot open for fsync", path);
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  checkSys(rc, "fsync failed for", path);
}

void fsyncDirectoryTree(const std::string& dir) {
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) fsyncPath(e.path().string());
  }
  KDGRID_CHECK(!ec, "cannot list '{}': {}", dir, ec.message());
  fsyncPath(dir);
}

void writePointer(const std::string& ckpt_dir, const std::string& which, const std::string& name) {
  const std::string path = (fs::path(ckpt_dir) / which).string();
  const std::string tmp = path + kTmpSuffix;
  const std::string text = name + "\n";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  checkSys(fd, "cannot create", tmp);
  const ssize_t written = ::write(fd, text.data(), text.size());
  const int write_errno = errno;
  const int sync_rc = written == static_cast<ssize_t>(text.size()) ? ::fsync(fd) : -1;
  const int sync_errno = errno;
  ::close(fd);
  if (written != static_cast<ssize_t>(text.size())) {
    errno = written < 0 ? write_errno : ENOSPC;
    checkSys(-1, "cannot write", tmp);
  }
  errno = sync_errno;
  checkSys(sync_rc, "fsync failed for", tmp);
  checkSys(::rename(tmp.c_str(), path.c_str()), "cannot rename over", path);
  fsyncPath(ckpt_dir);
}

void publishDirectory(const std::string& tmp_dir, const std::string& final_dir) {
  const std::string parent = fs::path(final_dir).parent_path().string();
  std::error_code ec;
  if (!fs::exists(final_dir, ec)) {
    checkSys(::rename(tmp_dir.c_str(), final_dir.c_str()), "cannot rename checkpoint to",
             final_dir);
  } else {
    // Same step saved again: swap atomically, then drop the old copy (now under tmp_dir).
    checkSys(::renameat2(AT_FDCWD, tmp_dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE),
             "cannot exchange the new checkpoint with the existing", final_dir);
    fs::remove_all(tmp_dir, ec);
    if (ec) logRank("warning: cannot remove replaced checkpoint '{}': {}", tmp_dir, ec.message());
  }
  fsyncPath(parent);
}

std::vector<std::string> pruneCheckpoints(const std::string& ckpt_dir, int keep) {
  std::vector<std::string> removed;
  std::error_code ec;
  // Leftovers of crashed saves: step_*.tmp directories, latest.tmp, best.tmp.
  std::vector<fs::path> leftovers;
  for (const fs::directory_entry& e : fs::directory_iterator(ckpt_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > std::strlen(kTmpSuffix) && name.ends_with(kTmpSuffix))
      leftovers.push_back(e.path());
  }
  KDGRID_CHECK(!ec, "cannot list checkpoint directory '{}': {}", ckpt_dir, ec.message());
  std::set<std::string> protect;
  for (const char* which : {kLatestFile, kBestFile}) {
    // A damaged pointer must not stop a save that already succeeded: protect nothing for it.
    try {
      if (auto name = readPointer(ckpt_dir, which)) protect.insert(*name);
    } catch (const UsageError& e) {
      logRank("warning: {}", e.what());
    }
  }
  std::vector<fs::path> doomed = leftovers;
  if (keep > 0) {
    const std::vector<std::string> steps = listStepDirs(ckpt_dir);
    for (size_t i = static_cast<size_t>(keep); i < steps.size(); ++i) {
      if (!protect.count(steps[i])) doomed.push_back(fs::path(ckpt_dir) / steps[i]);
    }
  }
  for (const fs::path& p : doomed) {
    fs::remove_all(p, ec);
    if (ec) {
      logRank("warning: cannot remove old checkpoint '{}': {}", p.string(), ec.message());
      continue;
    }
    removed.push_back(p.filename().string());
  }
  if (!removed.empty()) fsyncPath(ckpt_dir);
  return removed;
}

}  // namespace kdgrid
