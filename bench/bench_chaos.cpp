// bench_chaos: the recovery timeline of a cluster under repeated faults
// (issue 17). Starts a stateful wordcount with the WAL on as real processes
// on loopback: a driver under --supervise and three workers, over a
// generator stream. Then it injects a seeded schedule of faults, one every
// few seconds whether or not the previous one has been recovered from, as a
// chaos harness does:
//   driver-kill        kill -9 of the driver process (its supervisor restarts it)
//   worker-kill        kill -9 of a worker without the receiver
//   receiver-kill      kill -9 of the worker running the receiver
//   two-workers-kill   kill -9 of two workers at once
//   worker-stop        SIGSTOP of a worker without the receiver for 1-3 s
//   receiver-stop      SIGSTOP of the receiver's worker for 1-3 s
//   none               nothing: the baseline of the same measure
// Killed workers are replaced by fresh ones at once. Per fault it prints the
// time from the fault to the completion of the first batch generated after
// it that has records, and whether the driver stopped on state_lost
// meanwhile (a killed worker held the only copy of a state partition: the
// supervisor restarts the driver, which recomputes the state from the data
// checkpoint). Then a summary per kind. Prints figures, asserts nothing.
//
// Times are the stamps of the driver's log lines against the system clock
// at the fault (see bench_failover).
//
//   bench_chaos [--wordcount=PATH] [--seed=N] [--faults=14] [--rate=2000]
//               [--batch-interval=500ms] [--keep-logs]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench_processes.hpp"

namespace fs = std::filesystem;
using namespace sluice::bench;

namespace {

constexpr size_t num_workers = 3;
constexpr auto patience = std::chrono::seconds{60};

const std::vector<std::string> kinds{"driver-kill",      "worker-kill",
                                     "receiver-kill",    "two-workers-kill",
                                     "worker-stop",      "receiver-stop",
                                     "none"};

/// A port free now, for a driver that must come back where workers look.
uint16_t free_port() {
  auto fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct worker {
  process proc;
  std::string name;
};

struct fault {
  std::string kind;
  int64_t at = 0;          ///< ms since the epoch
  size_t log_offset = 0;   ///< of the driver's log at the fault
  int64_t stopped_ms = 0;  ///< SIGSTOP faults: how long
  std::string target;      ///< worker names
};

class chaos_cluster {
public:
  chaos_cluster(std::vector<std::string> common, fs::path dir)
    : common_(std::move(common)), dir_(std::move(dir)), port_(free_port()) {
  }

  bool start() {
    auto a = common_;
    a.push_back("--role=driver");
    a.push_back("--supervise");
    a.push_back("--listen=127.0.0.1:" + std::to_string(port_));
    supervisor = spawn(a, (dir_ / "driver.log").string());
    if (!await_driver_port(supervisor, std::chrono::seconds{30}))
      return false;
    for (size_t i = 0; i < num_workers; ++i)
      start_worker();
    return poll([&] { return occurrences(driver_log(), "joined with") >= num_workers; },
                patience, std::chrono::milliseconds{20});
  }

  worker& start_worker() {
    auto a = common_;
    a.push_back("--role=worker");
    a.push_back("--driver=127.0.0.1:" + std::to_string(port_));
    worker w;
    w.name = "worker" + std::to_string(++started_);
    w.proc = spawn(a, (dir_ / (w.name + ".log")).string());
    workers.push_back(std::move(w));
    return workers.back();
  }

  std::string driver_log() const {
    return slurp(supervisor.log);
  }

  /// The pid of the driver process the supervisor started last.
  pid_t driver_pid() const {
    static const std::regex re{"driver process ([0-9]+) started"};
    auto log = driver_log();
    pid_t pid = -1;
    for (std::sregex_iterator i{log.begin(), log.end(), re}, end; i != end; ++i)
      pid = std::stoi((*i)[1]);
    return pid;
  }

  /// The index of the live worker running the receiver, or workers.size().
  size_t receiver_host() const {
    static const std::regex re{"receiver of stream [0-9]+ runs on (\\S+)"};
    auto log = driver_log();
    std::string node;
    for (std::sregex_iterator i{log.begin(), log.end(), re}, end; i != end; ++i)
      node = (*i)[1];
    for (size_t i = 0; i < workers.size(); ++i)
      if (workers[i].proc.pid > 0
          && slurp(workers[i].proc.log).find(node + ": registered") != std::string::npos)
        return i;
    return workers.size();
  }

  std::vector<size_t> live_others(size_t except) const {
    std::vector<size_t> result;
    for (size_t i = 0; i < workers.size(); ++i)
      if (i != except && workers[i].proc.pid > 0)
        result.push_back(i);
    return result;
  }

  void stop() {
    std::vector<process> procs;
    for (auto& w : workers)
      procs.push_back(w.proc);
    stop_cluster(supervisor, procs);
    for (size_t i = 0; i < workers.size(); ++i)
      workers[i].proc = procs[i];
  }

  process supervisor;
  std::vector<worker> workers;

private:
  std::vector<std::string> common_;
  fs::path dir_;
  uint16_t port_;
  size_t started_ = 0;
};

/// Injects `f.kind`; returns false when there was no suitable target.
bool inject(chaos_cluster& c, fault& f, std::mt19937& rng) {
  auto host = c.receiver_host();
  auto others = c.live_others(host);
  auto pick = [&](std::vector<size_t>& from) {
    std::shuffle(from.begin(), from.end(), rng);
    return from;
  };
  auto kill_worker = [&](size_t i) {
    f.target += (f.target.empty() ? "" : "+") + c.workers[i].name;
    kill_and_wait(c.workers[i].proc, SIGKILL);
  };
  if (f.kind == "none")
    return true;
  if (f.kind == "driver-kill") {
    auto pid = c.driver_pid();
    if (pid <= 0)
      return false;
    f.target = "driver " + std::to_string(pid);
    return ::kill(pid, SIGKILL) == 0;
  }
  if (f.kind == "worker-kill" || f.kind == "receiver-kill") {
    if (f.kind == "receiver-kill" && host >= c.workers.size())
      return false;
    if (f.kind == "worker-kill" && others.empty())
      return false;
    kill_worker(f.kind == "receiver-kill" ? host : pick(others).front());
    c.start_worker();
    return true;
  }
  if (f.kind == "two-workers-kill") {
    auto all = c.live_others(c.workers.size());
    if (all.size() < 2)
      return false;
    pick(all);
    kill_worker(all[0]);
    kill_worker(all[1]);
    c.start_worker();
    c.start_worker();
    return true;
  }
  // SIGSTOP: the fault lasts as long as the stop; the measure starts at it.
  size_t i = c.workers.size();
  if (f.kind == "receiver-stop")
    i = host;
  else if (!others.empty())
    i = pick(others).front();
  if (i >= c.workers.size())
    return false;
  f.target = c.workers[i].name;
  f.stopped_ms = std::uniform_int_distribution<int64_t>{1000, 3000}(rng);
  ::kill(c.workers[i].proc.pid, SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds{f.stopped_ms});
  ::kill(c.workers[i].proc.pid, SIGCONT);
  return true;
}

} // namespace

int main(int argc, char** argv) {
  auto self_dir = fs::canonical("/proc/self/exe").parent_path();
  auto wordcount = arg(argc, argv, "--wordcount", (self_dir / "wordcount").string());
  auto seed = static_cast<uint32_t>(
    std::stoul(arg(argc, argv, "--seed", std::to_string(std::random_device{}()))));
  auto faults_n = std::stoul(arg(argc, argv, "--faults", "14"));
  auto rate = arg(argc, argv, "--rate", "2000");
  auto interval = arg(argc, argv, "--batch-interval", "500ms");
  bool keep = false;
  for (int i = 1; i < argc; ++i)
    keep = keep || std::string{argv[i]} == "--keep-logs";
  auto dir = fs::temp_directory_path() / ("sluice-chaos-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::printf("bench_chaos: seed %u, %lu faults, gen://%s, batch interval %s, "
              "stateful, WAL on, driver under --supervise, %zu workers\n",
              seed, faults_n, rate.c_str(), interval.c_str(), num_workers);
  chaos_cluster c{{wordcount, "--source=gen://" + rate, "--batch-interval=" + interval,
                   "--stateful", "--wal", "--checkpoint=" + (dir / "ckpt").string(),
                   "--output=" + (dir / "out").string(),
                   "--sluice.stop-gracefully-on-shutdown=true"},
                  dir};
  if (!c.start()) {
    std::printf("the cluster did not start; logs in %s\n", dir.c_str());
    c.stop();
    return 1;
  }
  // A first stretch of steady batches.
  poll([&] { return completed_batches(c.driver_log()).size() >= 6; }, patience,
       std::chrono::milliseconds{20});

  std::mt19937 rng{seed};
  std::vector<fault> faults;
  auto order = kinds;
  for (size_t n = 0; n < faults_n; ++n) {
    // One every 2-5 s, recovered from or not.
    std::this_thread::sleep_for(
      std::chrono::milliseconds{std::uniform_int_distribution<int>{2000, 5000}(rng)});
    // Every kind once per round of kinds.size() faults, in a seeded order.
    if (n % kinds.size() == 0)
      std::shuffle(order.begin(), order.end(), rng);
    fault f;
    f.kind = order[n % kinds.size()];
    f.log_offset = c.driver_log().size();
    f.at = wall_ms();
    if (!inject(c, f, rng)) {
      std::printf("  %-17s skipped (no live target)\n", f.kind.c_str());
      continue;
    }
    faults.push_back(f);
  }
  // The last fault's recovery, then the end.
  poll(
    [&] {
      auto batches = completed_batches(c.driver_log(), faults.empty() ? 0 : faults.back().log_offset);
      return std::count_if(batches.begin(), batches.end(),
                           [](auto& b) { return b.records > 0; })
             >= 3;
    },
    patience, std::chrono::milliseconds{50});
  auto log = c.driver_log();
  c.stop();

  std::map<std::string, std::vector<double>> by_kind;
  std::map<std::string, size_t> restarts_by_kind;
  std::printf("%-17s %-22s %8s %11s %s\n", "fault", "target", "stopped",
              "recovery", "driver restarts (state_lost)");
  for (size_t n = 0; n < faults.size(); ++n) {
    auto& f = faults[n];
    auto end = n + 1 < faults.size() ? faults[n + 1].log_offset : log.size();
    int64_t recovered = -1;
    for (auto& b : completed_batches(log, f.log_offset)) {
      auto stamp = stamp_ms(b.stamp, f.at);
      if (b.records > 0 && b.time > f.at && stamp >= f.at) {
        recovered = stamp - f.at;
        break;
      }
    }
    auto slice = log.substr(f.log_offset, end - f.log_offset);
    auto restarts = occurrences(slice, "died (");
    auto lost = occurrences(slice, "ERROR [scheduler] state_lost");
    if (recovered >= 0)
      by_kind[f.kind].push_back(static_cast<double>(recovered));
    restarts_by_kind[f.kind] += lost;
    std::printf("%-17s %-22s %6lld ms %8s ms %zu (%zu)\n", f.kind.c_str(),
                f.target.c_str(), static_cast<long long>(f.stopped_ms),
                recovered >= 0 ? std::to_string(recovered).c_str() : "never",
                restarts, lost);
  }
  std::printf("\nsummary: fault to the first batch after it with records\n");
  std::printf("%-17s %3s %8s %8s %8s %s\n", "fault", "n", "min", "median", "max",
              "state_lost restarts");
  for (auto& kind : kinds) {
    auto xs = by_kind[kind];
    if (xs.empty())
      continue;
    std::sort(xs.begin(), xs.end());
    std::printf("%-17s %3zu %5.0f ms %5.0f ms %5.0f ms %zu\n", kind.c_str(), xs.size(),
                xs.front(), xs[xs.size() / 2], xs.back(), restarts_by_kind[kind]);
  }
  if (keep)
    std::printf("logs in %s\n", dir.c_str());
  else
    fs::remove_all(dir);
  return 0;
}
