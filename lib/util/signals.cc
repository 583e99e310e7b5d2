// palettize/signals.h: one thread owns SIGINT, SIGTERM and SIGHUP (blocked everywhere else), so
// the clean-up runs as ordinary code, not in a signal handler.
#include "palettize/signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "util/staged_registry.h"
#include "util/staging.h"

namespace palettize {

namespace {

sigset_t CleanupSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

// The names of CleanupSignals(), as sigabbrev_np(3) gives them; spelled out because that call is
// glibc's (2.32 and later), absent from macOS and musl.
const char* SignalName(int sig) {
  switch (sig) {
    case SIGINT: return "INT";
    case SIGTERM: return "TERM";
    case SIGHUP: return "HUP";
    default: return "?";
  }
}

void* WaitAndRemove(void*) {
  const sigset_t set = CleanupSignals();
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  // Holding the lock for good: no commit starts or continues after this point.
  auto lock = LockStaged();
  RemoveAllStagedLocked();
  const std::string line =
      std::string("palettize: stopped by SIG") + SignalName(sig) + "; partial outputs removed\n";
  if (::write(STDERR_FILENO, line.data(), line.size()) < 0) {
  }
  _exit(128 + sig);
}

}  // namespace

Status RemoveStagedOutputsOnSignals() {
  ProcessUmask();  // read now, while no other thread could create files under a changed umask
  sigset_t set = CleanupSignals();
  int err = pthread_sigmask(SIG_BLOCK, &set, nullptr);
  pthread_t thread;
  if (err == 0) err = pthread_create(&thread, nullptr, WaitAndRemove, nullptr);
  if (err == 0) err = pthread_detach(thread);
  if (err != 0) return Status::IOError(std::string("cannot start the signal thread: ") + std::strerror(err));
  return Status::OK();
}

}  // namespace palettize
