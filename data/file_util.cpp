#include "data/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "src/core/check.h"

namespace kdgrid {

std::string readWholeFile(const std::string& path, std::string_view what) {
  std::error_code ec;
  KDGRID_INPUT_CHECK(
      std::filesystem::is_regular_file(path, ec), "{} '{}' {}", what, path,
      std::filesystem::exists(path, ec) ? "is not a regular file" : "does not exist");
  FILE* f = std::fopen(path.c_str(), "rb");
  KDGRID_INPUT_CHECK(f != nullptr, "cannot open {} '{}': {}", what, path, std::strerror(errno));
  std::string bytes;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) bytes.append(buf, n);
  const bool failed = std::ferror(f);
  std::fclose(f);
  KDGRID_INPUT_CHECK(!failed, "cannot read {} '{}'", what, path);
  return bytes;
}

void writeFileAtomically(const std::string& path, std::string_view bytes, std::string_view what) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  KDGRID_INPUT_CHECK(fd >= 0, "cannot write {} '{}': {}", what, tmp, std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw UsageError(fmt::format("cannot write {} '{}': {}", what, tmp, std::strerror(err)));
    }
    done += static_cast<size_t>(w);
  }
  const bool synced = ::fsync(fd) == 0;
  const int sync_err = errno;
  ::close(fd);
  if (!synced || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = synced ? errno : sync_err;
    ::unlink(tmp.c_str());
    throw UsageError(fmt::format("cannot write {} '{}': {}", what, path, std::strerror(err)));
  }
}

}  // namespace kdgrid
