// bench_recovery: how long a cluster takes to recover from kill -9 of its
// driver. Starts wordcount as a driver and two workers (real processes on
// loopback) over a generator stream with stateful totals, a checkpoint
// directory and the WAL; then, several times, kills the driver with SIGKILL,
// restarts it on the same port and measures the time from the kill to the
// first newly generated batch completed by the new driver. Prints figures,
// asserts nothing.
//
//   bench_recovery [--wordcount=PATH] [--kills=5] [--batch-interval=500ms]
//                  [--rate=20000]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include "bench/bench_processes.hpp"

namespace fs = std::filesystem;
using namespace sluice::bench;

int main(int argc, char** argv) {
  auto self = fs::read_symlink("/proc/self/exe");
  auto wordcount = arg(argc, argv, "--wordcount",
                       (self.parent_path() / "wordcount").string());
  auto kills = std::stoi(arg(argc, argv, "--kills", "5"));
  auto interval = arg(argc, argv, "--batch-interval", "500ms");
  auto rate = arg(argc, argv, "--rate", "20000");
  auto dir = fs::temp_directory_path() / ("bench-recovery-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::vector<std::string> common{wordcount,
                                  "--source=gen://" + rate,
                                  "--output=" + (dir / "out").string(),
                                  "--batch-interval=" + interval,
                                  "--stateful",
                                  "--wal",
                                  "--checkpoint=" + (dir / "ckpt").string(),
                                  "--sluice.log-level=info"};
  auto driver_args = [&](uint16_t port) {
    auto a = common;
    a.push_back("--role=driver");
    a.push_back("--listen=127.0.0.1:" + std::to_string(port));
    return a;
  };
  auto driver = spawn(driver_args(0), (dir / "driver0.log").string());
  auto listening = await_driver_port(driver, std::chrono::seconds{30});
  if (!listening) {
    std::fprintf(stderr, "the driver did not start; see %s\n", driver.log.c_str());
    return 1;
  }
  auto port = *listening;
  std::vector<process> workers;
  for (int i = 0; i < 2; ++i) {
    auto a = common;
    a.push_back("--role=worker");
    a.push_back("--driver=127.0.0.1:" + std::to_string(port));
    workers.push_back(spawn(a, (dir / ("worker" + std::to_string(i) + ".log")).string()));
  }
  std::printf("kill -9 of the driver -> first newly generated batch completed "
              "(batch interval %s, %s lines/s, 2 workers)\n",
              interval.c_str(), rate.c_str());
  std::vector<double> times;
  for (int k = 0; k < kills; ++k) {
    // Let it run a few batches first.
    if (!poll([&] { return completed_batches(slurp(driver.log)).size() >= 4; },
              std::chrono::seconds{60})) {
      std::fprintf(stderr, "no batches completed; see %s\n", driver.log.c_str());
      break;
    }
    auto killed = steady::now();
    kill_and_wait(driver, SIGKILL);
    driver = spawn(driver_args(port),
                   (dir / ("driver" + std::to_string(k + 1) + ".log")).string());
    long long first = -1;
    bool ok = poll(
      [&] {
        auto log = slurp(driver.log);
        std::smatch fm;
        if (first < 0) {
          if (!std::regex_search(log, fm, std::regex{"first batch at ([0-9]+) ms"}))
            return false;
          first = std::stoll(fm[1]);
        }
        for (auto& b : completed_batches(log))
          if (b.time >= first)
            return true;
        return false;
      },
      std::chrono::seconds{60});
    auto ms = std::chrono::duration<double, std::milli>(steady::now() - killed).count();
    if (!ok) {
      std::fprintf(stderr, "recovery %d did not complete; see %s\n", k + 1,
                   driver.log.c_str());
      break;
    }
    times.push_back(ms);
    std::printf("  recovery %d: %.0f ms\n", k + 1, ms);
  }
  if (!times.empty()) {
    double sum = 0, worst = 0;
    for (auto t : times) {
      sum += t;
      worst = std::max(worst, t);
    }
    std::printf("recovery time: mean %.0f ms, worst %.0f ms over %zu kills\n",
                sum / times.size(), worst, times.size());
  }
  stop_cluster(driver, workers);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return times.empty() ? 1 : 0;
}
