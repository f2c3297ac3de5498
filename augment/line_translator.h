// An external program that rewrites text line by line (a translator), kept running for as
// many documents as a rank has: one process start, however many sentences.
//
// The translator is a pipeline of child processes: each stage is an argv (argv[0] looked up
// on PATH, no shell), stage i's stdout feeds stage i+1's stdin, every stage's stderr goes to
// one pipe that is kept for error messages. It must write exactly one output line per input
// line, in order (a trailing CR is dropped). A writer thread feeds the submitted lines and a
// reader thread drains the output into memory, so neither side blocks on a full pipe however
// many lines are in flight, and several translators run side by side.
//
// A translator may hold output back (stdio buffers, pipes, sentence or batch assembly) until
// more input or the end of its input comes. receive() therefore must not wait for lines
// unless enough input follows them or closeInput() was called; the augment driver sees to
// that (TextAugmenter::lookaheadBytes).
//
// Errors are UsageErrors (exit 2) naming `what` (e.g. "--bt-command 'x'"): a stage that cannot
// start, that exits with a non-zero status or on a signal, or output that ends early or runs
// longer than the input. The message quotes the end of the stages' stderr.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kdgrid::augment {

class LineTranslator {
 public:
  using Stage = std::vector<std::string>;  // argv of one process

  // Starts every stage now.
  LineTranslator(std::vector<Stage> stages, std::string what);
  // A translator that was not finish()ed is stopped: SIGTERM to each stage's process group
  // (SIGKILL after a grace period), threads joined, children reaped. Never throws.
  ~LineTranslator();
  LineTranslator(const LineTranslator&) = delete;
  LineTranslator& operator=(const LineTranslator&) = delete;

  // Queues lines for the translator's stdin, each followed by '\n'. A line must not hold '\n'.
  void submit(std::vector<std::string> lines);
  // The next `count` output lines, in order; blocks until they are there.
  std::vector<std::string> receive(size_t count);
  // No more submit(): the writer closes the translator's stdin once it has written everything,
  // so the translator sees the end of its input and flushes what it holds.
  void closeInput();
  // closeInput(), then waits for the output to end and every stage to exit, and checks that
  // every submitted line was received and nothing more came back.
  void finish();

 private:
  void writerLoop();
  void readerLoop();
  void stderrLoop();
  // Stops the children (see the destructor); idempotent.
  void stop() noexcept;
  // Reaps the stages that have exited, waiting up to `wait_ms` (< 0: for ever) for the rest;
  // true when every stage is reaped.
  bool waitChildren(int wait_ms) noexcept;
  // Stops everything and throws UsageError: what_ + problem + exit statuses + stderr tail.
  [[noreturn]] void fail(const std::string& problem);
  std::string describeExits() const;

  std::string what_;
  std::vector<Stage> stages_;
  std::vector<pid_t> pids_;       // [stage]; each the leader of its own process group
  std::vector<int> wait_status_;  // [stage] from waitpid; valid where reaped_
  std::vector<bool> reaped_;      // [stage]
  int input_fd_ = -1;             // our end of stage 0's stdin (owned by the writer thread)
  int output_fd_ = -1;            // our end of the last stage's stdout (reader thread)
  int stderr_fd_ = -1;            // our end of the shared stderr pipe (stderr thread)
  uint64_t submitted_ = 0;        // lines submitted (caller's thread)
  uint64_t delivered_ = 0;        // lines handed out by receive() (caller's thread)
  bool stopped_ = false;          // caller's thread

  std::mutex mutex_;
  std::condition_variable changed_;
  // Guarded by mutex_:
  std::deque<std::vector<std::string>> to_write_;
  bool input_closed_ = false;  // no more submit(): the writer closes stdin when drained
  bool write_failed_ = false;  // the translator stopped reading (EPIPE)
  uint64_t lines_read_ = 0;    // output lines read so far
  std::deque<std::string> received_;
  bool output_ended_ = false;
  std::string stderr_tail_;  // the last kStderrTail bytes of the stages' stderr

  std::thread writer_, reader_, stderr_reader_;
};

}  // namespace kdgrid::augment
