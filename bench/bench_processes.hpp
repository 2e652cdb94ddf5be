#pragma once

// Helpers shared by the benchmarks that run wordcount as real processes
// (bench_recovery, bench_failover): start a process with its output in a log
// file, read that log, find the driver's OS-chosen port in it, parse the
// batches the driver logged complete, and stop every process at the end.
// Header-only: each benchmark is one translation unit, and these helpers
// need nothing of the sluice library.

#include <chrono>
#include <cstdint>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace sluice::bench {

using steady = std::chrono::steady_clock;

/// A child process and the file its stdout and stderr go to.
struct process {
  pid_t pid = -1; ///< -1 once waited for
  std::string log;
};

/// Starts `args` (args[0] is the binary's path) with stdout and stderr
/// redirected to `log`. The child dies with the benchmark (PR_SET_DEATHSIG):
/// a benchmark that crashes or is interrupted must not leave a cluster
/// generating data behind it.
inline process spawn(const std::vector<std::string>& args, const std::string& log) {
  process p;
  p.log = log;
  p.pid = ::fork();
  if (p.pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    auto fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::dup2(fd, 1);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return p;
}

/// The whole file at `path` (empty when it does not exist yet).
inline std::string slurp(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Polls `f` every `every` until it returns true or `limit` passes (by
/// default every 2 ms: a benchmark that measures latency by polling must
/// poll finely).
template <class F>
bool poll(F f, steady::duration limit,
          steady::duration every = std::chrono::milliseconds{2}) {
  auto deadline = steady::now() + limit;
  while (steady::now() < deadline) {
    if (f())
      return true;
    std::this_thread::sleep_for(every);
  }
  return false;
}

/// The value of `--key=value` on the command line, else `def`.
inline std::string arg(int argc, char** argv, const std::string& key,
                       std::string def) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind(key + "=", 0) == 0)
      return a.substr(key.size() + 1);
  }
  return def;
}

/// Waits until the driver logs `listening on 127.0.0.1:PORT` and returns
/// PORT (the driver was started with `--listen=127.0.0.1:0`).
inline std::optional<uint16_t> await_driver_port(const process& driver,
                                                 steady::duration limit) {
  static const std::regex re{"listening on 127\\.0\\.0\\.1:([0-9]+)"};
  uint16_t port = 0;
  auto found = poll(
    [&] {
      auto log = slurp(driver.log);
      std::smatch m;
      if (!std::regex_search(log, m, re))
        return false;
      port = static_cast<uint16_t>(std::stoi(m[1]));
      return true;
    },
    limit);
  if (!found)
    return std::nullopt;
  return port;
}

/// Number of times `what` occurs in `text` from byte `from` on.
inline size_t occurrences(const std::string& text, const std::string& what,
                          size_t from = 0) {
  size_t n = 0;
  for (auto pos = text.find(what, from); pos != std::string::npos;
       pos = text.find(what, pos + what.size()))
    ++n;
  return n;
}

/// Milliseconds since the epoch of a log line's `HH:MM:SS.mmm` stamp (UTC,
/// see runtime/log.cpp), taking the day from `near` (ms since the epoch, a
/// moment within 12 hours of the line): the stamp carries no date.
inline int64_t stamp_ms(const std::string& hh_mm_ss_mmm, int64_t near) {
  constexpr int64_t day = 24 * 3600 * 1000;
  auto of_day = ((std::stoll(hh_mm_ss_mmm.substr(0, 2)) * 60
                  + std::stoll(hh_mm_ss_mmm.substr(3, 2)))
                   * 60
                 + std::stoll(hh_mm_ss_mmm.substr(6, 2)))
                  * 1000
                + std::stoll(hh_mm_ss_mmm.substr(9, 3));
  auto t = near - near % day + of_day;
  if (t < near - day / 2)
    t += day;
  else if (t > near + day / 2)
    t -= day;
  return t;
}

/// Milliseconds since the epoch now, on the clock the log stamps use.
inline int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// A batch the driver logged complete (without failed jobs).
struct batch_line {
  std::string stamp;   ///< HH:MM:SS.mmm of the log line
  size_t offset = 0;   ///< of the line in the log
  int64_t time = 0;    ///< batch time, ms since the epoch
  uint64_t records = 0;
  int64_t total_delay = 0; ///< ms
};

/// The batches the driver logged complete in `log` from byte `from` on, in
/// log order. Only whole lines count (the driver may be writing the last
/// one); the newline that ends a line is not consumed, as it starts the next.
inline std::vector<batch_line> completed_batches(const std::string& log,
                                                 size_t from = 0) {
  static const std::regex re{"(?:^|\n)([0-9:.]{12}) [^\n]*batch ([0-9]+) ms: ([0-9]+) "
                             "records, scheduling delay [0-9]+ ms, processing "
                             "time [0-9]+ ms, total delay ([0-9]+) ms(?=\n)"};
  std::vector<batch_line> result;
  if (from > 0)
    --from; // the newline before the first line at `from`
  auto begin = log.begin() + static_cast<std::ptrdiff_t>(std::min(from, log.size()));
  for (std::sregex_iterator i{begin, log.end(), re}, end; i != end; ++i) {
    batch_line b;
    b.stamp = (*i)[1];
    b.offset = static_cast<size_t>((*i)[1].first - log.begin());
    b.time = std::stoll((*i)[2]);
    b.records = std::stoull((*i)[3]);
    b.total_delay = std::stoll((*i)[4]);
    result.push_back(std::move(b));
  }
  return result;
}

/// Waits up to `limit` for `p` to exit; true when it did (or was waited
/// for already).
inline bool wait_for(process& p, steady::duration limit) {
  if (p.pid < 0)
    return true;
  auto exited = poll([&] { return ::waitpid(p.pid, nullptr, WNOHANG) != 0; }, limit);
  if (exited)
    p.pid = -1;
  return exited;
}

/// Sends `sig` to `p` and waits until it exits.
inline void kill_and_wait(process& p, int sig) {
  if (p.pid < 0)
    return;
  ::kill(p.pid, sig);
  ::waitpid(p.pid, nullptr, 0);
  p.pid = -1;
}

/// Stops a cluster: SIGTERM to the driver, which tells its workers to exit;
/// then waits for every process, and SIGKILLs whatever still runs after
/// `grace` (a benchmark that hangs on a stuck child reports nothing).
inline void stop_cluster(process& driver, std::vector<process>& workers,
                         steady::duration grace = std::chrono::seconds{30}) {
  if (driver.pid > 0)
    ::kill(driver.pid, SIGTERM);
  auto deadline = steady::now() + grace;
  auto rest = [&] { return std::max(steady::duration{0}, deadline - steady::now()); };
  if (!wait_for(driver, rest()))
    kill_and_wait(driver, SIGKILL);
  for (auto& w : workers)
    if (!wait_for(w, rest()))
      kill_and_wait(w, SIGKILL);
}

} // namespace sluice::bench
