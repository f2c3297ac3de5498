// Helpers shared by test suites.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/core/check.h"

namespace kdgrid::test {

// A fresh directory under the system temp dir, removed by the destructor (rank 0 creates
// it; every rank of MPI_COMM_WORLD gets the same path).
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "kdgrid-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Where the sources are (for test data) and the built kdgrid binary.
std::string sourceDir();
std::string kdgridBinary();

// Runs a shell command, returns its exit status (the exit code, or 128+signal).
int runCommand(const std::string& command, std::string* output = nullptr);

// Runs fn, expecting a UsageError (exit code 2) whose message contains every needle.
template <typename Fn>
void expectUsageError(Fn&& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no UsageError";
  } catch (const UsageError& e) {
    EXPECT_EQ(e.exitCode(), kExitUsage) << e.what();
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "'" << n << "' not in: " << e.what();
  }
}

}  // namespace kdgrid::test
