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

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

namespace {

struct process {
  pid_t pid = -1;
  std::string log;
};

process spawn(const std::vector<std::string>& args, const std::string& log) {
  process p;
  p.log = log;
  p.pid = ::fork();
  if (p.pid == 0) {
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

std::string slurp(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Polls `f` every 2 ms (a benchmark measures latency, so it polls finely).
template <class F>
bool poll(F f, std::chrono::seconds limit) {
  auto deadline = steady::now() + limit;
  while (steady::now() < deadline) {
    if (f())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  return false;
}

std::string arg(int argc, char** argv, const std::string& key, std::string def) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind(key + "=", 0) == 0)
      return a.substr(key.size() + 1);
  }
  return def;
}

} // namespace

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
  std::smatch m;
  uint16_t port = 0;
  if (!poll([&] {
        auto log = slurp(driver.log);
        std::regex re{"listening on 127\\.0\\.0\\.1:([0-9]+)"};
        if (!std::regex_search(log, m, re))
          return false;
        port = static_cast<uint16_t>(std::stoi(m[1]));
        return true;
      },
      std::chrono::seconds{30})) {
    std::fprintf(stderr, "the driver did not start; see %s\n", driver.log.c_str());
    return 1;
  }
  std::vector<process> workers;
  for (int i = 0; i < 2; ++i) {
    auto a = common;
    a.push_back("--role=worker");
    a.push_back("--driver=127.0.0.1:" + std::to_string(port));
    workers.push_back(spawn(a, (dir / ("worker" + std::to_string(i) + ".log")).string()));
  }
  auto batches_done = [](const std::string& log) {
    size_t n = 0;
    for (auto pos = log.find(" records, scheduling delay"); pos != std::string::npos;
         pos = log.find(" records, scheduling delay", pos + 1))
      ++n;
    return n;
  };
  std::printf("kill -9 of the driver -> first newly generated batch completed "
              "(batch interval %s, %s lines/s, 2 workers)\n",
              interval.c_str(), rate.c_str());
  std::vector<double> times;
  for (int k = 0; k < kills; ++k) {
    // Let it run a few batches first.
    if (!poll([&] { return batches_done(slurp(driver.log)) >= 4; },
              std::chrono::seconds{60})) {
      std::fprintf(stderr, "no batches completed; see %s\n", driver.log.c_str());
      break;
    }
    ::kill(driver.pid, SIGKILL);
    auto killed = steady::now();
    ::waitpid(driver.pid, nullptr, 0);
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
        std::regex done{"batch ([0-9]+) ms: [0-9]+ records, scheduling delay"};
        for (auto i = std::sregex_iterator(log.begin(), log.end(), done);
             i != std::sregex_iterator(); ++i)
          if (std::stoll((*i)[1]) >= first)
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
  ::kill(driver.pid, SIGTERM);
  ::waitpid(driver.pid, nullptr, 0);
  for (auto& w : workers)
    ::waitpid(w.pid, nullptr, 0);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return times.empty() ? 1 : 0;
}
