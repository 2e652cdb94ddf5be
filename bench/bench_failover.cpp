// bench_failover: how a cluster rides out kill -9 of a worker (issue 5,
// section 6). Starts wordcount as a driver and three workers (real processes
// on loopback) over a generator stream, without the WAL: a received block
// survives the loss of one worker through its second copy on another worker
// (the default storage level memory_ser_2, hot standby). Then, each round,
// it waits until batches with records complete steadily, kills one worker
// with SIGKILL (alternately the one that runs the receiver and one that runs
// none), measures, and starts a fresh worker in its place, which joins the
// running cluster. Per round it prints:
//  - the time from the kill until the driver noticed the worker's loss;
//  - the time from the kill to the completion of the first batch whose batch
//    time is after the kill, and that batch's total delay;
//  - for the receiver's worker, the time until the driver placed the
//    receiver on another worker, and the restart's number and back-off: to
//    the tracker, a receiver that fails within 30 s of its start continues
//    a streak, and each restart of a streak waits twice as long, so the
//    receiver kills of back-to-back rounds are not alike;
//  - the batches delayed by the loss: those that completed after the kill,
//    until the stream is steady again, with no records or with a total delay
//    over the batch interval; and apart from them the short ones, with
//    records but fewer than half of what the rate gives a batch (the
//    generator produces nothing while its receiver is down, so a restart
//    quicker than a batch interval shows as a short batch, not an empty one);
//  - the replica switches: every read of a block that reached a copy after
//    failed locations, with the time it took, as the survivors log them
//    from the kill until the stream is steady again.
// Then a summary per kind of kill. Prints figures, asserts nothing.
//
// Times are the stamps of the log lines (the system clock, to the ms, taken
// when the process logged the event) against the system clock at the kill,
// not the moments this program read the logs: on a loaded machine its
// polling would add its own delay to every figure.
//
//   bench_failover [--wordcount=PATH] [--rounds=3] [--batch-interval=500ms]
//                  [--rate=20000] [--keep-logs]
//
// --keep-logs keeps the processes' logs (and the output) in the temporary
// directory and prints its path; a round that does not recover keeps them
// too.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include "bench/bench_processes.hpp"

namespace fs = std::filesystem;
using namespace sluice::bench;

namespace {

constexpr size_t num_workers = 3;

/// Consecutive good batches (records, total delay within the batch
/// interval) that make the stream steady: one could be luck.
constexpr size_t steady_run = 3;

/// How long any one wait of a round may take before the round gives up.
constexpr auto patience = std::chrono::seconds{60};

/// Polling interval of the benchmark's waits. Coarser than poll()'s default: the
/// figures come from the log stamps, so finer polling buys nothing, and
/// parsing the driver's log 500 times a second takes CPU from the cluster
/// under test.
constexpr auto measure_every = std::chrono::milliseconds{20};

struct worker {
  process proc;
  std::string name; ///< worker1, worker2, ... in start order
  std::string node; ///< the node id it logs when the driver accepted it
};

/// A line of a log that matched a regex: its stamp, where it is, and the
/// groups of the match, copied (the log it was found in is read anew on
/// each poll).
struct log_match {
  int64_t at = 0; ///< ms since the epoch
  size_t offset = 0;
  std::vector<std::string> groups; ///< [0] the whole match
};

/// The first whole line of `log` from byte `from` on that matches `re`
/// (whose first group must be the line's stamp) and `accept`.
template <class F>
std::optional<log_match> find_line(const std::string& log, size_t from,
                                   const std::regex& re, int64_t near, F accept) {
  auto begin = log.begin() + static_cast<std::ptrdiff_t>(std::min(from, log.size()));
  for (std::sregex_iterator i{begin, log.end(), re}, end; i != end; ++i) {
    if (!accept(*i))
      continue;
    log_match result;
    for (auto& group : *i)
      result.groups.push_back(group.str());
    result.offset = static_cast<size_t>((*i)[1].first - log.begin());
    result.at = stamp_ms((*i)[1], near);
    return result;
  }
  return std::nullopt;
}

/// "500ms", "1s", "2s": the batch interval in ms (0 when unreadable).
int64_t parse_ms(const std::string& str) {
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(str, &used);
  } catch (...) {
    return 0;
  }
  auto unit = str.substr(used);
  if (unit == "ms")
    return n;
  if (unit == "s")
    return n * 1000;
  return 0;
}

struct stats {
  size_t n = 0;
  double min = 0, mean = 0, max = 0;
};

stats summarize(const std::vector<double>& xs) {
  stats s;
  s.n = xs.size();
  if (xs.empty())
    return s;
  s.min = *std::min_element(xs.begin(), xs.end());
  s.max = *std::max_element(xs.begin(), xs.end());
  s.mean = std::accumulate(xs.begin(), xs.end(), 0.0) / xs.size();
  return s;
}

/// What a round needs to know of the stream.
struct stream_settings {
  int64_t interval_ms = 0;
  /// Records a batch gets at the generator's rate (0: as fast as it goes,
  /// unknown).
  uint64_t expected_records = 0;
};

struct round_result {
  bool receiver_kill = false;
  std::string victim;                ///< its name
  std::optional<int64_t> noticed_ms; ///< kill -> the driver logged the loss
  bool recovered = false;            ///< a batch after the kill completed
  int64_t first_batch_ms = 0;        ///< kill -> that batch completed
  int64_t first_batch_delay = 0;     ///< that batch's total delay
  std::optional<int64_t> restart_ms; ///< kill -> receiver placed elsewhere
  std::string restart;               ///< "#N, D ms": the restart and its back-off
  bool settled = false;              ///< steady again within the patience
  size_t completed = 0;              ///< batches completed since the kill, until steady
  size_t empty = 0;                  ///< of them, with no records
  size_t late = 0;                   ///< with records, total delay over the interval
  size_t short_ = 0;                 ///< in time, with under half the expected records
  std::vector<double> switches;      ///< ms of each replica switch
  size_t driver_warnings = 0, driver_errors = 0, failed_jobs = 0;
  size_t worker_warnings = 0, worker_errors = 0;
};

class bench_cluster {
public:
  bench_cluster(std::vector<std::string> common, fs::path dir)
    : common_(std::move(common)),
      dir_(std::move(dir)) {
    // nop
  }

  bool start_driver() {
    auto a = common_;
    a.push_back("--role=driver");
    a.push_back("--listen=127.0.0.1:0");
    driver = spawn(a, (dir_ / "driver.log").string());
    auto listening = await_driver_port(driver, std::chrono::seconds{30});
    if (!listening)
      return false;
    port_ = *listening;
    return true;
  }

  /// Starts a worker; it still has to register (see await_registered).
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

  /// Waits until `w` logs that the driver accepted it, which names its
  /// node, and the driver logged it joined (the worker hears the answer
  /// after the driver logged it, but the two logs are read at different
  /// moments).
  bool await_registered(worker& w) {
    static const std::regex re{"\\[worker\\] (\\S+): registered with the driver"};
    return poll(
      [&] {
        std::smatch m;
        auto log = slurp(w.proc.log);
        if (!std::regex_search(log, m, re))
          return false;
        w.node = m[1];
        return slurp(driver.log).find("worker " + w.node + " joined with")
               != std::string::npos;
      },
      patience, measure_every);
  }

  /// The node running the receiver of the (one) stream, by the driver's
  /// latest placement.
  std::string receiver_node() const {
    static const std::regex re{"receiver of stream [0-9]+ runs on (\\S+)"};
    auto log = slurp(driver.log);
    std::string node;
    for (std::sregex_iterator i{log.begin(), log.end(), re}, end; i != end; ++i)
      node = (*i)[1];
    return node;
  }

  /// Kills `victim` with SIGKILL and forgets it; returns the wall clock of
  /// the kill.
  int64_t kill_worker(size_t victim) {
    auto at = wall_ms();
    kill_and_wait(workers[victim].proc, SIGKILL);
    workers.erase(workers.begin() + static_cast<std::ptrdiff_t>(victim));
    return at;
  }

  void stop() {
    std::vector<process> procs;
    for (auto& w : workers)
      procs.push_back(w.proc);
    stop_cluster(driver, procs);
  }

  process driver;
  std::vector<worker> workers; ///< the live ones

private:
  std::vector<std::string> common_;
  fs::path dir_;
  uint16_t port_ = 0;
  int started_ = 0;
};

/// Waits until the last `steady_run` batches completed from byte `from` of
/// the driver's log on had records and a total delay within the interval.
bool await_steady(const process& driver, size_t from, int64_t interval_ms) {
  return poll(
    [&] {
      auto batches = completed_batches(slurp(driver.log), from);
      if (batches.size() < steady_run)
        return false;
      return std::all_of(batches.end() - steady_run, batches.end(), [&](auto& b) {
        return b.records > 0 && b.total_delay <= interval_ms;
      });
    },
    patience, measure_every);
}

/// Kills one worker and measures until the stream is steady again.
round_result run_round(bench_cluster& c, bool receiver_kill, const stream_settings& cfg) {
  auto interval_ms = cfg.interval_ms;
  round_result r;
  r.receiver_kill = receiver_kill;
  auto receiver = c.receiver_node();
  size_t victim = c.workers.size();
  for (size_t i = 0; i < c.workers.size() && victim == c.workers.size(); ++i)
    if ((c.workers[i].node == receiver) == receiver_kill)
      victim = i;
  if (victim == c.workers.size()) {
    std::fprintf(stderr, "no worker %s the receiver (it runs on '%s')\n",
                 receiver_kill ? "runs" : "without", receiver.c_str());
    return r;
  }
  r.victim = c.workers[victim].name;
  auto victim_node = c.workers[victim].node;
  // Where each log stands at the kill: what follows happened after it.
  auto driver_from = slurp(c.driver.log).size();
  std::vector<std::pair<std::string, size_t>> survivor_from;
  for (size_t i = 0; i < c.workers.size(); ++i)
    if (i != victim)
      survivor_from.emplace_back(c.workers[i].proc.log,
                                 slurp(c.workers[i].proc.log).size());
  auto killed = c.kill_worker(victim);

  // (a) first batch after the kill; (b) receiver restart; delayed batches
  // until steady_run good batches completed after both.
  static const std::regex lost{"([0-9:.]{12}) [^\n]*\\[membership\\] worker (\\S+) "
                               "(?:declared )?lost \\((?=[^\n]*\n)"};
  static const std::regex backoff{"([0-9:.]{12}) [^\n]*receiver of stream [0-9]+ lost "
                                  "on (\\S+) [^\n]*; restart ([0-9]+) in ([0-9]+) "
                                  "ms(?=\n)"};
  static const std::regex placed{"([0-9:.]{12}) [^\n]*receiver of stream [0-9]+ runs "
                                 "on (\\S+)(?=\n)"};
  auto of_victim = [&](const std::smatch& m) { return m[2] == victim_node; };
  std::optional<log_match> noticed, restarting, restart;
  r.settled = poll(
    [&] {
      auto log = slurp(c.driver.log);
      if (!noticed)
        noticed = find_line(log, driver_from, lost, killed, of_victim);
      if (receiver_kill && !restarting)
        restarting = find_line(log, driver_from, backoff, killed, of_victim);
      if (receiver_kill && !restart)
        restart = find_line(log, driver_from, placed, killed,
                            [&](const std::smatch& m) { return m[2] != victim_node; });
      auto batches = completed_batches(log, driver_from);
      auto first = std::find_if(batches.begin(), batches.end(),
                                [&](auto& b) { return b.time > killed; });
      if (first == batches.end())
        return false;
      if (!r.recovered) {
        r.recovered = true;
        r.first_batch_ms = stamp_ms(first->stamp, killed) - killed;
        r.first_batch_delay = first->total_delay;
      }
      if (receiver_kill && !restart)
        return false;
      // The stream is steady again once steady_run consecutive good batches
      // completed after the first batch after the kill and after the
      // receiver's restart; the delayed ones are counted up to there.
      auto gate = restart ? restart->offset : 0;
      size_t run = 0;
      for (auto i = first; i != batches.end(); ++i) {
        bool good = i->records > 0 && i->total_delay <= interval_ms;
        run = good && i->offset > gate ? run + 1 : 0;
        if (run == steady_run) {
          auto done = i + 1;
          r.completed = static_cast<size_t>(done - batches.begin());
          auto batches_that = [&](auto pred) {
            return static_cast<size_t>(std::count_if(batches.begin(), done, pred));
          };
          r.empty = batches_that([](auto& b) { return b.records == 0; });
          r.late = batches_that([&](auto& b) {
            return b.records > 0 && b.total_delay > interval_ms;
          });
          r.short_ = batches_that([&](auto& b) {
            return b.records > 0 && b.total_delay <= interval_ms
                   && b.records < cfg.expected_records / 2;
          });
          return true;
        }
      }
      return false;
    },
    patience, measure_every);
  if (noticed)
    r.noticed_ms = noticed->at - killed;
  if (restart)
    r.restart_ms = restart->at - killed;
  if (restarting)
    r.restart = "#" + restarting->groups[3] + ", " + restarting->groups[4] + " ms";

  // (c) replica switches the survivors logged since the kill; and whatever
  // went wrong, as the logs say it.
  static const std::regex switched{
    "block \\S+ read from \\S+ after [0-9]+ failed location\\(s\\) in "
    "([0-9.]+(?:e[-+]?[0-9]+)?) ms"};
  for (auto& [path, from] : survivor_from) {
    auto log = slurp(path);
    auto begin = log.begin() + static_cast<std::ptrdiff_t>(std::min(from, log.size()));
    for (std::sregex_iterator i{begin, log.end(), switched}, end; i != end; ++i)
      r.switches.push_back(std::stod((*i)[1]));
    r.worker_warnings += occurrences(log, " WARN  [", from);
    r.worker_errors += occurrences(log, " ERROR [", from);
  }
  auto log = slurp(c.driver.log);
  r.driver_warnings = occurrences(log, " WARN  [", driver_from);
  r.driver_errors = occurrences(log, " ERROR [", driver_from);
  r.failed_jobs = occurrences(log, " jobs failed (", driver_from);
  return r;
}

std::string ms_or_dash(std::optional<int64_t> x) {
  return x ? std::to_string(*x) + " ms" : std::string{"-"};
}

std::string describe_switches(const std::vector<double>& xs) {
  if (xs.empty())
    return "none";
  auto s = summarize(xs);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%zu: %.1f/%.1f/%.1f ms", s.n, s.min, s.mean, s.max);
  return buf;
}

} // namespace

int main(int argc, char** argv) {
  auto self = fs::read_symlink("/proc/self/exe");
  auto wordcount = arg(argc, argv, "--wordcount",
                       (self.parent_path() / "wordcount").string());
  auto rounds = std::atoi(arg(argc, argv, "--rounds", "3").c_str());
  auto interval = arg(argc, argv, "--batch-interval", "500ms");
  auto rate = arg(argc, argv, "--rate", "20000");
  bool keep_logs = false;
  for (int i = 1; i < argc; ++i)
    keep_logs = keep_logs || std::string{argv[i]} == "--keep-logs";
  auto interval_ms = parse_ms(interval);
  auto numeric = !rate.empty()
                 && rate.find_first_not_of("0123456789") == std::string::npos;
  if (interval_ms <= 0 || rounds < 1 || !numeric) {
    std::fprintf(stderr, "--batch-interval takes e.g. 500ms or 1s, --rounds a "
                         "positive number, --rate lines/s (0: as fast as it "
                         "goes)\n");
    return 2;
  }
  auto dir = fs::temp_directory_path() / ("bench-failover-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // No --wal and no --checkpoint: the second copy of each block is what
  // survives a worker, which is what this measures.
  bench_cluster c{{wordcount, "--source=gen://" + rate,
                   "--output=" + (dir / "out").string(), "--batch-interval=" + interval,
                   "--sluice.log-level=info"},
                  dir};
  auto finish = [&](int status) {
    c.stop();
    if (keep_logs || status != 0) {
      std::printf("logs kept in %s\n", dir.c_str());
    } else {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
    return status;
  };
  if (!c.start_driver()) {
    std::fprintf(stderr, "the driver did not start; see %s\n", c.driver.log.c_str());
    return finish(1);
  }
  for (size_t i = 0; i < num_workers; ++i)
    c.start_worker();
  for (auto& w : c.workers)
    if (!c.await_registered(w)) {
      std::fprintf(stderr, "%s did not register; see %s\n", w.name.c_str(),
                   w.proc.log.c_str());
      return finish(1);
    }

  stream_settings cfg;
  cfg.interval_ms = interval_ms;
  cfg.expected_records = std::stoull(rate) * static_cast<uint64_t>(interval_ms) / 1000;
  std::printf("kill -9 of a worker (batch interval %s, %s lines/s, %zu workers, "
              "no WAL, storage level memory_ser_2); times in ms from the kill\n",
              interval.c_str(), rate.c_str(), num_workers);
  std::printf("%-5s %-8s %-8s %7s %9s %9s %8s %-12s %7s %5s %4s %5s  %s\n", "round",
              "killed", "ran", "noticed", "1st batch", "its delay", "receiver",
              "(restart)", "delayed", "empty", "late", "short",
              "replica switches (n: min/mean/max)");
  // A kill right after a batch completed would always meet the same phase
  // of the batch and block timers; a random wait of up to one interval
  // spreads the kills over it.
  std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> phase{0, interval_ms};
  std::vector<round_result> results;
  int status = 0;
  auto round_from = slurp(c.driver.log).size();
  for (int k = 0; k < rounds; ++k) {
    if (!await_steady(c.driver, round_from, interval_ms))
      std::printf("      (round %d: batches not steady after %llds; killing "
                  "anyway)\n",
                  k + 1, static_cast<long long>(patience.count()));
    std::this_thread::sleep_for(std::chrono::milliseconds{phase(rng)});
    auto receiver_kill = k % 2 == 0;
    auto r = run_round(c, receiver_kill, cfg);
    if (r.victim.empty()) {
      status = 1;
      break;
    }
    auto count = [&](size_t n) {
      return r.settled ? std::to_string(n) : std::string{"-"};
    };
    auto delayed = r.settled ? std::to_string(r.empty + r.late) + "/"
                                 + std::to_string(r.completed)
                             : std::string{"unsteady"};
    std::printf("%-5d %-8s %-8s %7s %9s %9s %8s %-12s %7s %5s %4s %5s  %s\n", k + 1,
                r.victim.c_str(), receiver_kill ? "receiver" : "no recv.",
                ms_or_dash(r.noticed_ms).c_str(),
                ms_or_dash(r.recovered ? std::optional{r.first_batch_ms} : std::nullopt)
                  .c_str(),
                ms_or_dash(r.recovered ? std::optional{r.first_batch_delay}
                                       : std::nullopt)
                  .c_str(),
                ms_or_dash(r.restart_ms).c_str(),
                r.restart.empty() ? "" : ("(" + r.restart + ")").c_str(),
                delayed.c_str(), count(r.empty).c_str(), count(r.late).c_str(),
                count(r.short_).c_str(), describe_switches(r.switches).c_str());
    if (r.driver_warnings + r.driver_errors + r.worker_warnings + r.worker_errors > 0)
      std::printf("      logs since the kill: driver %zu WARN, %zu ERROR (%zu "
                  "with failed jobs); survivors %zu WARN, %zu ERROR\n",
                  r.driver_warnings, r.driver_errors, r.failed_jobs,
                  r.worker_warnings, r.worker_errors);
    results.push_back(r);
    if (!r.recovered || (receiver_kill && !r.restart_ms)) {
      std::fprintf(stderr, "round %d did not recover; see %s\n", k + 1,
                   c.driver.log.c_str());
      status = 1;
      break;
    }
    // A fresh worker takes the dead one's place, as an operator would
    // start one, so that every round starts with the same cluster size.
    auto& fresh = c.start_worker();
    if (!c.await_registered(fresh)) {
      std::fprintf(stderr, "%s did not register; see %s\n", fresh.name.c_str(),
                   fresh.proc.log.c_str());
      status = 1;
      break;
    }
    round_from = slurp(c.driver.log).size();
  }

  std::printf("summary over %zu round(s):\n", results.size());
  for (bool receiver_kill : {true, false}) {
    std::vector<double> noticed, first, delay, restart;
    std::string restarts;
    size_t kills = 0, empty = 0, late = 0, short_ = 0, completed = 0;
    for (auto& r : results) {
      if (r.receiver_kill != receiver_kill || !r.recovered)
        continue;
      ++kills;
      if (r.noticed_ms)
        noticed.push_back(static_cast<double>(*r.noticed_ms));
      first.push_back(static_cast<double>(r.first_batch_ms));
      delay.push_back(static_cast<double>(r.first_batch_delay));
      if (r.restart_ms)
        restart.push_back(static_cast<double>(*r.restart_ms));
      if (!r.restart.empty())
        restarts += (restarts.empty() ? "" : "; ") + r.restart;
      if (r.settled) {
        empty += r.empty;
        late += r.late;
        short_ += r.short_;
        completed += r.completed;
      }
    }
    if (kills == 0)
      continue;
    std::printf("  %s, %zu kill(s):\n",
                receiver_kill ? "worker running the receiver"
                              : "worker running no receiver",
                kills);
    if (!noticed.empty()) {
      auto s = summarize(noticed);
      std::printf("    kill -> the driver noticed the loss: mean %.0f ms, min %.0f, "
                  "max %.0f\n",
                  s.mean, s.min, s.max);
    }
    auto f = summarize(first);
    auto d = summarize(delay);
    std::printf("    kill -> first batch after it completed: mean %.0f ms, min %.0f, "
                "max %.0f (its total delay: mean %.0f ms, max %.0f)\n",
                f.mean, f.min, f.max, d.mean, d.max);
    if (!restart.empty()) {
      auto s = summarize(restart);
      std::printf("    kill -> receiver running on another worker: mean %.0f ms, "
                  "min %.0f, max %.0f (restart number, back-off: %s)\n",
                  s.mean, s.min, s.max, restarts.c_str());
    }
    std::printf("    batches delayed (no records, or total delay > %lld ms) until "
                "steady: %zu of %zu completed (%zu empty, %zu late), %.1f per kill\n",
                static_cast<long long>(interval_ms), empty + late, completed, empty,
                late, static_cast<double>(empty + late) / kills);
    if (cfg.expected_records > 0)
      std::printf("    short batches (in time, under %llu records) until steady: %zu\n",
                  static_cast<unsigned long long>(cfg.expected_records / 2), short_);
  }
  std::vector<double> all;
  for (auto& r : results)
    all.insert(all.end(), r.switches.begin(), r.switches.end());
  if (all.empty()) {
    std::printf("  replica switches: none (no task read a block after a failed "
                "location)\n");
  } else {
    auto s = summarize(all);
    std::printf("  replica switches: %zu, min %.1f ms, mean %.1f ms, max %.1f ms\n",
                s.n, s.min, s.mean, s.max);
  }
  return finish(results.empty() ? 1 : status);
}
