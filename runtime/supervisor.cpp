#include "runtime/supervisor.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "runtime/io/errors.hpp"
#include "runtime/log.hpp"

namespace sluice {

namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds min_backoff{500};
constexpr milliseconds max_backoff{10000};
/// A child that ran this long was no crash loop: the next delay is the least.
constexpr milliseconds stable_run{5000};
/// After a restart asked for: long enough for the old process's port to be
/// free again (it exited), short enough not to add to the recovery.
constexpr milliseconds recover_delay{200};

std::vector<std::string> child_args(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--supervise" || a == "--supervise=true")
      continue;
    args.push_back(std::move(a));
  }
  return args;
}

pid_t start_child(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  auto pid = ::fork();
  if (pid == 0) {
    // /proc/self/exe: the same binary even if argv[0] is relative and the
    // working directory changed.
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  return pid;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status))
    return std::string{"killed by signal "} + std::to_string(WTERMSIG(status)) + " ("
           + ::strsignal(WTERMSIG(status)) + ")";
  return "exit code " + std::to_string(WEXITSTATUS(status));
}

} // namespace

milliseconds restart_delays::next(int status, milliseconds ran) {
  if (ran >= stable_run)
    backoff_ = min_backoff;
  if (WIFEXITED(status) && WEXITSTATUS(status) == exit_restart_to_recover
      && ran >= std::chrono::seconds{1})
    return recover_delay; // asked for, not a crash: the streak stays as it is
  auto delay = backoff_;
  backoff_ = std::min(backoff_ * 2, max_backoff);
  return delay;
}

int supervise(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  auto args = child_args(argc, argv);
  restart_delays delays;
  int forwarded = 0;
  for (uint64_t incarnation = 1;; ++incarnation) {
    auto started = steady::now();
    auto pid = start_child(args);
    if (pid < 0) {
      SLUICE_ERROR("supervisor", "cannot fork: " << io::errno_text(errno));
      return 1;
    }
    SLUICE_INFO("supervisor", "driver process " << pid << " started (incarnation "
                                                << incarnation << ")");
    int status = 0;
    for (;;) {
      auto r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid)
        break;
      timespec wait{0, 100 * 1000 * 1000};
      auto sig = sigtimedwait(&signals, nullptr, &wait);
      if (sig == SIGINT || sig == SIGTERM) {
        forwarded = sig;
        ::kill(pid, sig);
      }
    }
    if (forwarded != 0) {
      SLUICE_INFO("supervisor", "driver stopped after " << ::strsignal(forwarded)
                                                        << ": " << describe_status(status));
      return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 2))
      return WEXITSTATUS(status);
    auto delay = delays.next(status, std::chrono::duration_cast<milliseconds>(
                                       steady::now() - started));
    SLUICE_WARN("supervisor", "driver process " << pid << " died ("
                                                << describe_status(status)
                                                << "); restarting in "
                                                << delay.count() << " ms");
    // The back-off wait still honours a stop request.
    auto until = steady::now() + delay;
    while (steady::now() < until) {
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
        until - steady::now());
      timespec wait{0, static_cast<long>(std::min<int64_t>(left.count(), 100000000))};
      auto sig = sigtimedwait(&signals, nullptr, &wait);
      if (sig == SIGINT || sig == SIGTERM)
        return 0;
    }
  }
}

} // namespace sluice
