#include "augment/line_translator.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "src/core/check.h"

extern char** environ;

namespace kdgrid::augment {
namespace {

constexpr size_t kStderrTail = 2048;  // bytes of the translator's stderr quoted in errors
constexpr size_t kReadChunk = 1 << 16;
constexpr int kTermGraceMs = 2000;  // from SIGTERM to SIGKILL when stopping a translator
constexpr int kExitWaitMs = 1000;   // for a translator whose output ended to exit, in errors

std::string joinArgv(const LineTranslator::Stage& stage) {
  std::string text;
  for (const std::string& arg : stage) {
    if (!text.empty()) text += ' ';
    text += arg;
  }
  return text;
}

void closeFd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// A pipe whose ends are closed on exec, so no child inherits the ends meant for another.
void makePipe(int fds[2], const std::string& what) {
  KDGRID_CHECK(::pipe2(fds, O_CLOEXEC) == 0, "{}: cannot create a pipe: {}", what,
               std::strerror(errno));
  // dup2 onto 0/1/2 in the child must copy, not alias: an end that landed on a standard
  // descriptor (this process had it closed) would lose its meaning.
  KDGRID_CHECK(fds[0] > 2 && fds[1] > 2, "{}: a pipe got a standard descriptor ({}, {})", what,
               fds[0], fds[1]);
}

// Starts `stage` with the given descriptors as its stdin, stdout and stderr, in a process group
// of its own (so stop() reaches the processes it starts in turn), with default handling of
// SIGPIPE, SIGINT and SIGTERM and no blocked signals. Returns 0 or an errno value.
int spawnStage(const LineTranslator::Stage& stage, int in_fd, int out_fd, int err_fd, pid_t* pid) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv;
  for (const std::string& arg : stage) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const int rc = ::posix_spawnp(pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  return rc;
}

// write() all of `data`; false on EPIPE or another error (errno set).
bool writeAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

LineTranslator::LineTranslator(std::vector<Stage> stages, std::string what)
    : what_(std::move(what)), stages_(std::move(stages)) {
  KDGRID_CHECK(!stages_.empty(), "{}: a translator needs at least one stage", what_);
  for (const Stage& stage : stages_) {
    KDGRID_CHECK(!stage.empty(), "{}: a translator stage has no program", what_);
  }
  int in[2], err[2];
  makePipe(in, what_);
  makePipe(err, what_);
  input_fd_ = in[1];
  stderr_fd_ = err[0];
  int stage_in = in[0];
  for (size_t i = 0; i < stages_.size(); ++i) {
    int out[2];
    try {
      makePipe(out, what_);
    } catch (...) {
      closeFd(stage_in);
      closeFd(err[1]);
      stop();
      throw;
    }
    pid_t pid = -1;
    const int rc = spawnStage(stages_[i], stage_in, out[1], err[1], &pid);
    closeFd(stage_in);
    closeFd(out[1]);
    stage_in = out[0];
    if (rc != 0) {
      closeFd(stage_in);
      closeFd(err[1]);
      stop();
      throw UsageError(
          fmt::format("{}: cannot start '{}': {}", what_, stages_[i][0], std::strerror(rc)));
    }
    pids_.push_back(pid);
    wait_status_.push_back(0);
    reaped_.push_back(false);
  }
  output_fd_ = stage_in;
  closeFd(err[1]);  // the children hold their copies; EOF once every stage is gone
  writer_ = std::thread([this] { writerLoop(); });
  reader_ = std::thread([this] { readerLoop(); });
  stderr_reader_ = std::thread([this] { stderrLoop(); });
}

LineTranslator::~LineTranslator() {
  stop();
}

void LineTranslator::submit(std::vector<std::string> lines) {
  submitted_ += lines.size();
  {
    std::lock_guard lock(mutex_);
    KDGRID_CHECK(!input_closed_, "{}: submit() after closeInput()", what_);
    to_write_.push_back(std::move(lines));
  }
  changed_.notify_all();
}

std::vector<std::string> LineTranslator::receive(size_t count) {
  KDGRID_CHECK(delivered_ + count <= submitted_, "{}: receive({}) asks for lines never submitted",
               what_, count);
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return received_.size() >= count || output_ended_; });
  if (received_.size() < count) {
    const uint64_t read = lines_read_;
    lock.unlock();
    fail(fmt::format("its output ended after {} lines, but {} lines were sent", read, submitted_));
  }
  std::vector<std::string> lines;
  lines.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    lines.push_back(std::move(received_.front()));
    received_.pop_front();
  }
  delivered_ += count;
  return lines;
}

void LineTranslator::closeInput() {
  {
    std::lock_guard lock(mutex_);
    input_closed_ = true;
  }
  changed_.notify_all();
}

void LineTranslator::finish() {
  if (stopped_) return;
  closeInput();
  writer_.join();
  reader_.join();
  stderr_reader_.join();
  waitChildren(-1);
  closeFd(output_fd_);
  closeFd(stderr_fd_);
  stopped_ = true;
  for (size_t i = 0; i < stages_.size(); ++i) {
    const int status = wait_status_[i];
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("a stage failed");
  }
  if (lines_read_ != submitted_) {
    fail(fmt::format("it wrote {} lines for the {} lines it was sent", lines_read_, submitted_));
  }
  KDGRID_CHECK(delivered_ == submitted_, "{}: finish() with {} lines not received", what_,
               submitted_ - delivered_);
}

void LineTranslator::writerLoop() {
  // A translator that exits early makes write() fail with EPIPE. The SIGPIPE that comes with it
  // is directed at this thread, which blocks it, so it cannot end the process; it stays pending
  // on this thread and is discarded when the thread exits.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
  std::string buffer;
  for (;;) {
    std::vector<std::string> lines;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return !to_write_.empty() || input_closed_; });
      if (to_write_.empty()) break;  // closed and drained
      lines = std::move(to_write_.front());
      to_write_.pop_front();
    }
    buffer.clear();
    for (const std::string& line : lines) {
      buffer += line;
      buffer += '\n';
    }
    if (!writeAll(input_fd_, buffer.data(), buffer.size())) {
      std::lock_guard lock(mutex_);
      write_failed_ = true;
      break;
    }
  }
  closeFd(input_fd_);
}

void LineTranslator::readerLoop() {
  std::string partial;
  std::vector<char> chunk(kReadChunk);
  for (;;) {
    const ssize_t n = ::read(output_fd_, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::vector<std::string> lines;
    size_t begin = 0;
    for (ssize_t i = 0; i < n; ++i) {
      if (chunk[i] != '\n') continue;
      partial.append(chunk.data() + begin, i - begin);
      if (!partial.empty() && partial.back() == '\r') partial.pop_back();
      lines.push_back(std::move(partial));
      partial.clear();
      begin = static_cast<size_t>(i) + 1;
    }
    partial.append(chunk.data() + begin, static_cast<size_t>(n) - begin);
    if (!lines.empty()) {
      std::lock_guard lock(mutex_);
      lines_read_ += lines.size();
      for (std::string& line : lines) received_.push_back(std::move(line));
      changed_.notify_all();
    }
  }
  std::lock_guard lock(mutex_);
  if (!partial.empty()) {  // a last line without its '\n'
    if (partial.back() == '\r') partial.pop_back();
    received_.push_back(std::move(partial));
    ++lines_read_;
  }
  output_ended_ = true;
  changed_.notify_all();
}

void LineTranslator::stderrLoop() {
  std::vector<char> chunk(4096);
  for (;;) {
    const ssize_t n = ::read(stderr_fd_, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard lock(mutex_);
    stderr_tail_.append(chunk.data(), static_cast<size_t>(n));
    if (stderr_tail_.size() > 2 * kStderrTail) {
      stderr_tail_.erase(0, stderr_tail_.size() - kStderrTail);
    }
  }
}

bool LineTranslator::waitChildren(int wait_ms) noexcept {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    bool all = true;
    for (size_t i = 0; i < pids_.size(); ++i) {
      if (reaped_[i]) continue;
      int status = 0;
      const pid_t r = ::waitpid(pids_[i], &status, wait_ms < 0 ? 0 : WNOHANG);
      if (r == pids_[i] || (r < 0 && errno != EINTR)) {
        reaped_[i] = true;
        wait_status_[i] = r == pids_[i] ? status : 0;
      } else {
        all = false;
      }
    }
    if (all) return true;
    if (wait_ms >= 0 && std::chrono::steady_clock::now() >= deadline) return false;
    if (wait_ms >= 0) ::usleep(2000);
  }
}

void LineTranslator::stop() noexcept {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(mutex_);
    input_closed_ = true;
  }
  changed_.notify_all();
  // Each stage's group holds the processes it started; once they are gone the pipes close and
  // the threads see EPIPE or end of file. SIGTERM first, so that a stage can clean up (the
  // apertium script removes its temporary file), SIGKILL for whatever is left.
  for (size_t i = 0; i < pids_.size(); ++i) {
    if (!reaped_[i]) ::kill(-pids_[i], SIGTERM);
  }
  if (!waitChildren(kTermGraceMs)) {
    for (size_t i = 0; i < pids_.size(); ++i) {
      if (!reaped_[i]) ::kill(-pids_[i], SIGKILL);
    }
    waitChildren(-1);
  }
  for (pid_t pid : pids_) ::kill(-pid, SIGKILL);  // stragglers in the groups (ESRCH if none)
  if (writer_.joinable()) writer_.join();
  if (reader_.joinable()) reader_.join();
  if (stderr_reader_.joinable()) stderr_reader_.join();
  closeFd(input_fd_);
  closeFd(output_fd_);
  closeFd(stderr_fd_);
}

std::string LineTranslator::describeExits() const {
  std::string text;
  for (size_t i = 0; i < stages_.size(); ++i) {
    if (!reaped_[i]) continue;
    const int status = wait_status_[i];
    std::string how;
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      how = fmt::format("exited with status {}", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
      how = fmt::format("was killed by signal {} ({})", WTERMSIG(status),
                        ::strsignal(WTERMSIG(status)));
    }
    if (!how.empty()) text += fmt::format("; '{}' {}", joinArgv(stages_[i]), how);
  }
  return text;
}

void LineTranslator::fail(const std::string& problem) {
  // Report only the exits the translator made on its own, not those stop() causes. Its output
  // having ended, the stages are normally exiting: give them a moment.
  waitChildren(stopped_ ? 0 : kExitWaitMs);
  const std::vector<bool> ended_alone = reaped_;
  stop();
  reaped_ = ended_alone;
  const std::string exits = describeExits();
  std::string tail;
  bool stopped_reading = false;
  {
    std::lock_guard lock(mutex_);
    stopped_reading = write_failed_;
    tail = stderr_tail_.size() > kStderrTail
               ? stderr_tail_.substr(stderr_tail_.size() - kStderrTail)
               : stderr_tail_;
  }
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  throw UsageError(fmt::format("{}: {}{}{}{}", what_, problem,
                               stopped_reading ? "; it stopped reading its input" : "", exits,
                               tail.empty() ? "" : fmt::format("; its stderr ends: {}", tail)));
}

}  // namespace kdgrid::augment
