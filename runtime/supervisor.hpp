#pragma once

#include <chrono>

namespace sluice {

/// Exit code of a driver that stops so that its restart recovers (a worker
/// took the only copy of a state partition with it: errc::state_lost). Not
/// a crash: a supervisor restarts it after the shortest delay.
constexpr int exit_restart_to_recover = 3;

/// The delay before a supervisor starts its next child: see supervise().
/// Pure (no clock, no process): the supervisor passes how its child ended
/// and how long it ran. Not thread-safe; owned by one supervisor.
class restart_delays {
public:
  /// `status` is a waitpid() status; returns the delay before the restart.
  std::chrono::milliseconds next(int status, std::chrono::milliseconds ran);

private:
  std::chrono::milliseconds backoff_{500};
};

/// The `--supervise` mode of a sluice binary: runs the same command line
/// without `--supervise` as a child process and restarts it whenever it
/// dies abnormally (a signal such as SIGKILL, or an exit code other than 0
/// and 2). A child that asked for its restart (exit_restart_to_recover)
/// after running at least a second is restarted after 200 ms. Otherwise the
/// delay doubles from 500 ms up to 10 s while children die within 5 s of
/// their start (a crash loop), and is back at 500 ms for a child that ran
/// longer: under repeated faults (chaos tests, a flaky node) a driver that
/// served between them must not wait longer at each one. A restarted driver
/// recovers from its checkpoint directory; workers reconnect to it by
/// themselves.
///
/// SIGINT and SIGTERM are forwarded to the child; the supervisor then waits
/// for it and returns its exit code. An exit code 0 (a clean stop, e.g.
/// --duration) or 2 (bad options: a restart would fail the same way) ends
/// supervision with that code. Must be called before any thread exists
/// (it forks), with SIGINT and SIGTERM blocked.
int supervise(int argc, char** argv);

} // namespace sluice
