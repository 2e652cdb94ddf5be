#pragma once

// Starts wordcount processes (a driver and workers, or one local-mode
// process) and finds the driver's OS-chosen port in its log.

#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <sys/wait.h>

#include "tests/support/helpers.hpp"

namespace sluice::test {

/// Exit status of a process that exited by itself with `code`.
inline bool exited_with(int status, int code) {
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == code;
}

struct wordcount_cluster {
  temp_dir dir{"sluice-cluster"};
  std::vector<std::string> app_args;
  std::unique_ptr<child_process> driver;
  std::vector<std::unique_ptr<child_process>> old_drivers; ///< killed ones
  std::vector<std::unique_ptr<child_process>> workers;
  uint16_t port = 0;
  int driver_starts = 0;

  std::string output() const {
    return dir / "out";
  }

  std::vector<std::string> args(std::vector<std::string> extra) const {
    std::vector<std::string> result{wordcount_binary()};
    result.insert(result.end(), app_args.begin(), app_args.end());
    result.push_back("--output=" + output());
    result.insert(result.end(), extra.begin(), extra.end());
    return result;
  }

  /// Starts the driver on `listen_port` (0: OS-chosen) and waits until it
  /// says where it listens.
  void start_driver(uint16_t listen_port = 0, std::vector<std::string> extra = {}) {
    extra.push_back("--role=driver");
    extra.push_back("--listen=127.0.0.1:" + std::to_string(listen_port));
    driver = std::make_unique<child_process>(
      args(extra), dir.path(), "driver" + std::to_string(++driver_starts));
    std::regex re{"listening on 127\\.0\\.0\\.1:([0-9]+)"};
    std::smatch m;
    REQUIRE(wait_until([&] {
      auto log = driver->err();
      if (!std::regex_search(log, m, re))
        return false;
      port = static_cast<uint16_t>(std::stoi(m[1]));
      return true;
    }));
  }

  child_process& start_worker(uint16_t driver_port = 0) {
    auto p = driver_port != 0 ? driver_port : port;
    auto name = "worker" + std::to_string(workers.size() + 1);
    workers.push_back(std::make_unique<child_process>(
      args({"--role=worker", "--driver=127.0.0.1:" + std::to_string(p)}),
      dir.path(), name));
    return *workers.back();
  }

  /// Waits until the driver's log shows `n` workers joined.
  bool await_workers(size_t n) {
    return wait_until([&] {
      auto log = driver->err();
      size_t count = 0;
      for (auto pos = log.find("joined with"); pos != std::string::npos;
           pos = log.find("joined with", pos + 1))
        ++count;
      return count >= n;
    });
  }

  std::string logs() const {
    std::string result;
    for (auto& old : old_drivers)
      result += "--- earlier driver\n" + old->err();
    if (driver)
      result += "--- driver\n" + driver->err();
    for (auto& w : workers)
      result += "--- worker\n" + w->err();
    return result;
  }
};

} // namespace sluice::test
