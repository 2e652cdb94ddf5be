#pragma once

namespace sluice {

/// The `--supervise` mode of a sluice binary: runs the same command line
/// without `--supervise` as a child process and restarts it whenever it
/// dies abnormally (a signal such as SIGKILL, or an exit code other than 0
/// and 2), after a back-off that doubles from 500 ms up to 10 s and resets
/// once a child ran for 30 s. A restarted driver recovers from its
/// checkpoint directory; workers reconnect to it by themselves.
///
/// SIGINT and SIGTERM are forwarded to the child; the supervisor then waits
/// for it and returns its exit code. An exit code 0 (a clean stop, e.g.
/// --duration) or 2 (bad options: a restart would fail the same way) ends
/// supervision with that code. Must be called before any thread exists
/// (it forks), with SIGINT and SIGTERM blocked.
int supervise(int argc, char** argv);

} // namespace sluice
