#pragma once

// A driver under --supervise in process tests: cleaning up the driver
// processes its supervisor started, and finding them.

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <signal.h>

#include "tests/process/cluster.hpp"

namespace sluice::test {

/// The pids of the driver processes a supervisor started, in order, as its
/// log names them.
inline std::vector<int> supervised_drivers(const child_process& supervisor) {
  static const std::regex re{"driver process ([0-9]+) started"};
  std::vector<int> pids;
  auto log = supervisor.err();
  for (std::sregex_iterator i{log.begin(), log.end(), re}, end; i != end; ++i)
    pids.push_back(std::stoi((*i)[1]));
  return pids;
}

/// Kills (SIGKILL) the supervisor, then the driver processes it started that
/// still run, when a test ends early: they are not children of the test, so
/// nothing else would end them (the supervisor first, so it starts no new
/// one meanwhile).
struct supervised_children_guard {
  child_process* supervisor;

  ~supervised_children_guard() {
    supervisor->signal(SIGKILL);
    supervisor->wait();
    for (auto pid : supervised_drivers(*supervisor)) {
      // The pid may have been reused by now: only a wordcount driver is ours.
      auto cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
      if (cmdline.find("--role=driver") != std::string::npos
          && cmdline.find("wordcount") != std::string::npos)
        ::kill(pid, SIGKILL);
    }
  }
};

/// Starts the driver of `c` (its app_args set) under --supervise on a port
/// chosen here and not by the OS at each start: a restarted driver must
/// listen where the workers look for it. Returns the port.
inline uint16_t start_supervised(wordcount_cluster& c) {
  auto port = free_port();
  c.start_driver(port, {"--supervise"});
  return port;
}

/// Starts a stateful word count over directory `in` (created) with a
/// checkpoint, its driver under --supervise; returns the driver's port.
inline uint16_t start_supervised_driver(wordcount_cluster& c, const std::string& in) {
  std::filesystem::create_directories(in);
  c.app_args = {"--source=dir://" + in, "--batch-interval=200ms", "--stateful",
                "--checkpoint=" + (c.dir / "ckpt"),
                "--sluice.stop-gracefully-on-shutdown=true"};
  return start_supervised(c);
}

} // namespace sluice::test
