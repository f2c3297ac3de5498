// LineTranslator: long-lived external line-by-line translators, fed and drained concurrently.
// The children are ordinary Debian tools (sh, tr, rev, sed, head).
#include <gtest/gtest.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "augment/line_translator.h"
#include "src/core/check.h"

namespace kdgrid::augment {
namespace {

using Stages = std::vector<LineTranslator::Stage>;

std::string upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return s;
}

std::vector<std::string> numberedLines(size_t first, size_t count) {
  std::vector<std::string> lines;
  for (size_t i = first; i < first + count; ++i) {
    lines.push_back("line " + std::to_string(i) + " of some text, with [brackets] and $ ^ @");
  }
  return lines;
}

// The message of the UsageError that `fn` throws ("" when it throws none).
template <typename Fn>
std::string usageErrorOf(Fn&& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(AugmentTranslator, ManyBatchesThroughOneProcessWithoutDeadlock) {
  // 40 batches of 5000 lines (about 12 MB): far more than the pipes hold, so the writer and the
  // reader must run at the same time. `tr` holds output in its stdio buffer, so the lines of
  // the last batch only come out after closeInput().
  LineTranslator tr({{"tr", "a-z", "A-Z"}}, "tr");
  constexpr size_t kBatch = 5000, kBatches = 40;
  for (size_t b = 0; b < kBatches; ++b) tr.submit(numberedLines(b * kBatch, kBatch));
  tr.closeInput();
  for (size_t b = 0; b < kBatches; ++b) {
    const std::vector<std::string> expected = numberedLines(b * kBatch, kBatch);
    const std::vector<std::string> got = tr.receive(kBatch);
    ASSERT_EQ(got.size(), kBatch);
    for (size_t i = 0; i < kBatch; ++i) ASSERT_EQ(got[i], upper(expected[i]));
  }
  tr.finish();
}

TEST(AugmentTranslator, InterleavedSubmitAndReceive) {
  // Receive while later batches are still being sent (what the augment driver does).
  LineTranslator cat({{"cat"}}, "cat");
  cat.submit(numberedLines(0, 10));
  for (size_t b = 1; b < 50; ++b) {
    cat.submit(numberedLines(b * 10, 10));
    EXPECT_EQ(cat.receive(10), numberedLines((b - 1) * 10, 10));
  }
  cat.closeInput();
  EXPECT_EQ(cat.receive(10), numberedLines(490, 10));
  cat.finish();
}

TEST(AugmentTranslator, PipelineOfStages) {
  LineTranslator t({{"tr", "a-z", "A-Z"}, {"rev"}, {"sed", "s/^/> /"}}, "three stages");
  t.submit({"abc", "", "hello world"});
  t.closeInput();
  EXPECT_EQ(t.receive(3), (std::vector<std::string>{"> CBA", "> ", "> DLROW OLLEH"}));
  t.finish();
}

TEST(AugmentTranslator, OutputEndingEarlyIsAUsageError) {
  LineTranslator t({{"head", "-n", "3"}}, "--bt-command 'head -n 3'");
  t.submit(numberedLines(0, 100));
  t.closeInput();
  const std::string message = usageErrorOf([&] { t.receive(100); });
  EXPECT_NE(message.find("--bt-command 'head -n 3'"), std::string::npos) << message;
  EXPECT_NE(message.find("ended after 3 lines"), std::string::npos) << message;
}

TEST(AugmentTranslator, DroppedLineIsAUsageError) {
  LineTranslator t({{"sed", "2d"}}, "dropper");
  t.submit(numberedLines(0, 5));
  t.closeInput();
  EXPECT_NE(usageErrorOf([&] { t.receive(5); }).find("ended after 4 lines"), std::string::npos);
}

TEST(AugmentTranslator, ExtraLinesAreAUsageErrorAtFinish) {
  LineTranslator t({{"sed", "p"}}, "doubler");
  t.submit({"a", "b"});
  t.closeInput();
  EXPECT_EQ(t.receive(2), (std::vector<std::string>{"a", "a"}));
  const std::string message = usageErrorOf([&] { t.finish(); });
  EXPECT_NE(message.find("wrote 4 lines for the 2 lines"), std::string::npos) << message;
}

TEST(AugmentTranslator, NonZeroExitIsAUsageErrorWithItsStderr) {
  // Translates every line, then fails: the exit status alone marks the run as failed.
  LineTranslator t({{"sh", "-c", "cat; echo 'model file missing' >&2; exit 4"}}, "failing");
  t.submit({"a", "b"});
  t.closeInput();
  EXPECT_EQ(t.receive(2), (std::vector<std::string>{"a", "b"}));
  const std::string message = usageErrorOf([&] { t.finish(); });
  EXPECT_NE(message.find("exited with status 4"), std::string::npos) << message;
  EXPECT_NE(message.find("model file missing"), std::string::npos) << message;
}

TEST(AugmentTranslator, DeathBySignalIsNamed) {
  LineTranslator t({{"sh", "-c", "read x; kill -9 $$"}}, "killed");
  t.submit(numberedLines(0, 10));
  t.closeInput();
  const std::string message = usageErrorOf([&] { t.receive(10); });
  EXPECT_NE(message.find("killed by signal 9"), std::string::npos) << message;
}

TEST(AugmentTranslator, MissingProgramIsAUsageError) {
  const std::string message =
      usageErrorOf([] { LineTranslator t({{"kdgrid-no-such-program"}}, "missing"); });
  EXPECT_NE(message.find("cannot start 'kdgrid-no-such-program'"), std::string::npos) << message;
}

// The state letter of /proc/PID/stat ('R', 'S', 'Z' for a zombie, ...), or "" when there is no
// such process.
std::string procState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return "";
  // "PID (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? "?" : stat.substr(paren + 2, 1);
}

// A child of this process that is gone for good: reaped (waitpid knows no such child) and
// absent from /proc (so not a zombie either).
::testing::AssertionResult childGone(pid_t pid) {
  const std::string state = procState(pid);  // before waitpid below, which would reap it
  int status = 0;
  const pid_t w = ::waitpid(pid, &status, WNOHANG);
  if (w != -1 || errno != ECHILD) {
    return ::testing::AssertionFailure()
           << "pid " << pid << " is still a child of this process (waitpid gave " << w
           << ", state '" << state << "'" << (state == "Z" ? ": a zombie, never reaped" : "")
           << ")";
  }
  if (!state.empty()) {
    return ::testing::AssertionFailure() << "/proc/" << pid << " still exists, state '" << state
                                         << "'" << (state == "Z" ? " (a zombie)" : "");
  }
  return ::testing::AssertionSuccess();
}

// The stages' PIDs, which the translator below prints as its first output line ("PID0 PID1").
std::vector<pid_t> pidsOf(const std::string& line) {
  std::istringstream in(line);
  std::vector<pid_t> pids;
  for (pid_t p; in >> p;) pids.push_back(p);
  return pids;
}

// Never finished: the destructor must end the children and reap them. Stage 0 prints its PID
// and becomes `cat` (waiting on input that keeps coming); stage 1 reads that line, appends its
// own PID and becomes `sleep`, ignoring the rest of its input.
TEST(AugmentTranslator, DestructorStopsAndReapsARunningTranslator) {
  std::vector<pid_t> pids;
  {
    LineTranslator t({{"sh", "-c", "echo $$; exec cat"},
                      {"sh", "-c", "read first; echo \"$first $$\"; exec sleep 600"}},
                     "sleeper");
    t.submit(numberedLines(0, 1));
    pids = pidsOf(t.receive(1).at(0));
    ASSERT_EQ(pids.size(), 2u);
    for (pid_t pid : pids) {
      ASSERT_NE(procState(pid), "") << "stage " << pid << " is not running";
      ASSERT_NE(procState(pid), "Z") << "stage " << pid << " exited early";
    }
    t.submit(numberedLines(1, 10));
  }  // ~LineTranslator
  for (pid_t pid : pids) EXPECT_TRUE(childGone(pid));
}

// A stage that ignores SIGTERM is killed after the grace period, and reaped as well.
TEST(AugmentTranslator, DestructorKillsAndReapsAStageIgnoringSigterm) {
  pid_t pid = -1;
  {
    LineTranslator t({{"sh", "-c", "trap '' TERM; echo $$; exec sleep 600"}}, "stubborn");
    t.submit(numberedLines(0, 1));
    const auto pids = pidsOf(t.receive(1).at(0));
    ASSERT_EQ(pids.size(), 1u);
    pid = pids[0];
    ASSERT_NE(procState(pid), "");
  }
  EXPECT_TRUE(childGone(pid));
}

}  // namespace
}  // namespace kdgrid::augment
