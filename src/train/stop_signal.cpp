#include "src/train/stop_signal.h"

#include <csignal>
#include <initializer_list>

namespace kdgrid {
namespace {
// Written from a signal handler, so it must be a lock-free atomic global: the one place where
// process-wide mutable state is the only correct design.
volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void onStopSignal(int sig) {
  if (g_stop_signal == 0) g_stop_signal = sig;
}
}  // namespace

void installStopHandlers() {
  struct sigaction action = {};
  action.sa_handler = onStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int sig : {SIGUSR1, SIGINT, SIGTERM}) sigaction(sig, &action, nullptr);
}

bool stopRequested() { return g_stop_signal != 0; }
int stopSignal() { return g_stop_signal; }

}  // namespace kdgrid
