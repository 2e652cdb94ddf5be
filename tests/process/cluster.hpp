#pragma once

// Starts wordcount processes (a driver and workers, or one local-mode
// process) and finds the driver's OS-chosen port in its log.

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include "tests/support/helpers.hpp"

namespace sluice::test {

/// The records of each batch the driver logged complete, in log order, from
/// byte `from` of its log on.
inline std::vector<uint64_t> batch_records(const std::string& log,
                                           size_t from = 0) {
  static const std::regex re{"\\] batch [0-9]+ ms: ([0-9]+) records"};
  std::vector<uint64_t> result;
  auto begin = log.cbegin() + static_cast<std::ptrdiff_t>(std::min(from, log.size()));
  for (std::sregex_iterator i{begin, log.cend(), re}, end; i != end; ++i)
    result.push_back(std::stoull((*i)[1]));
  return result;
}

/// Batches a process completed (its log lines).
inline size_t completed_batches(const child_process& p) {
  return batch_records(p.err()).size();
}

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
  size_t driver_events_from = 0; ///< events before the last start_driver()

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

  /// The driver's event log (--sluice.event-log): every driver this
  /// cluster starts appends to it, a supervised one's incarnations too.
  std::string event_log() const {
    return dir / "events.jsonl";
  }

  /// The driver's events so far, in order (a line still being written is
  /// left out).
  std::vector<nlohmann::json> events() const {
    std::vector<nlohmann::json> result;
    auto text = read_file(event_log());
    size_t begin = 0;
    for (auto end = text.find('\n'); end != std::string::npos;
         begin = end + 1, end = text.find('\n', begin))
      result.push_back(nlohmann::json::parse(text.substr(begin, end - begin)));
    return result;
  }

  /// Events of kind `event` (and `what`, when given) from index `from` on.
  size_t count_events(const std::string& event, const std::string& what = "",
                      size_t from = 0) const {
    auto all = events();
    size_t n = 0;
    for (size_t i = from; i < all.size(); ++i)
      if (all[i]["event"] == event && (what.empty() || all[i]["what"] == what))
        ++n;
    return n;
  }

  /// Starts the driver on `listen_port` (0: OS-chosen) and waits until it
  /// says where it listens.
  void start_driver(uint16_t listen_port = 0, std::vector<std::string> extra = {}) {
    driver_events_from = events().size();
    extra.push_back("--sluice.event-log=" + event_log());
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

  /// Waits until the driver's events show `n` workers joined since the
  /// last start_driver() (a supervised driver's restarts included, as its
  /// supervisor's log holds every incarnation's lines).
  bool await_workers(size_t n) {
    return wait_until(
      [&] { return count_events("node", "joined", driver_events_from) >= n; });
  }

  /// The number of driver events so far: a mark to wait for later ones.
  size_t mark() const {
    return events().size();
  }

  /// Batches completed (batch_completed events) from event `from` on.
  std::vector<nlohmann::json> batches_from(size_t from) const {
    std::vector<nlohmann::json> result;
    auto all = events();
    for (size_t i = from; i < all.size(); ++i)
      if (all[i]["event"] == "batch_completed")
        result.push_back(all[i]);
    return result;
  }

  /// Waits (up to a minute) until `n` batches with records completed since
  /// the last start_driver().
  bool await_batches_with_records(size_t n) {
    return wait_until(
      [&] {
        size_t with_records = 0;
        for (auto& b : batches_from(driver_events_from))
          with_records += b["records"].get<uint64_t>() > 0 ? 1 : 0;
        return with_records >= n;
      },
      std::chrono::seconds{60});
  }

  /// Waits (up to a minute) until `n` batches without records completed
  /// after event `from` (a mark()). Batches complete in order, so then
  /// every batch before them did, with every block reported before.
  bool await_empty_batches(size_t from, size_t n) {
    return wait_until(
      [&] {
        size_t empty = 0;
        for (auto& b : batches_from(from))
          empty += b["records"].get<uint64_t>() == 0 ? 1 : 0;
        return empty >= n;
      },
      std::chrono::seconds{60});
  }

  /// Where a receiver runs, as the driver's events say.
  struct placement {
    uint32_t stream = 0;
    std::string node;
  };

  /// Waits until the driver places a receiver (a `receiver placed` event)
  /// after event `from` (a mark()) on a node other than `not_on`; the test
  /// fails otherwise.
  placement await_receiver(size_t from = 0, const std::string& not_on = "") {
    placement result;
    REQUIRE(wait_until([&] {
      auto all = events();
      for (size_t i = from; i < all.size(); ++i)
        if (all[i]["event"] == "receiver" && all[i]["what"] == "placed"
            && all[i]["node"] != not_on) {
          result.stream = all[i]["stream"].get<uint32_t>();
          result.node = all[i]["node"].get<std::string>();
          return true;
        }
      return false;
    }));
    return result;
  }

  /// The index in `workers` of the process whose node id is `node`
  /// (workers.size() if none says so). A worker logs its registration when
  /// the driver's answer arrives, which may be after the driver placed a
  /// receiver there, so this waits for it.
  size_t worker_of(const std::string& node) {
    size_t found = workers.size();
    wait_until([&] {
      for (size_t i = 0; i < workers.size(); ++i)
        if (workers[i]->err().find(node + ": registered") != std::string::npos)
          found = i;
      return found < workers.size();
    });
    return found;
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

/// The tagged lines (make_tagged_text) counted in per-batch word counts,
/// and a description of each counted other than once.
struct tagged_counts {
  std::set<long long> lines;
  std::vector<std::string> not_once;
};

inline tagged_counts tagged(const std::map<std::string, int64_t>& totals) {
  tagged_counts result;
  for (auto& [word, n] : totals) {
    auto line = line_tag(word);
    if (line < 0)
      continue;
    result.lines.insert(line);
    if (n != 1)
      result.not_once.push_back(word + " counted " + std::to_string(n) + " times");
  }
  return result;
}

/// The first `k` lines of `text`.
inline std::string first_lines(const std::string& text, size_t k) {
  size_t end = 0;
  for (size_t i = 0; i < k; ++i)
    end = text.find('\n', end) + 1;
  return text.substr(0, end);
}

/// Totals per batch directory up to batch `last` (ms), in batch time order.
/// Later batches may still be being written by the running driver.
inline std::vector<std::map<std::string, int64_t>>
totals_per_batch(const std::string& out,
                 long long last = std::numeric_limits<long long>::max()) {
  std::map<long long, std::string> dirs;
  for (auto& e : std::filesystem::directory_iterator(out))
    if (auto t = std::stoll(e.path().filename().string()); t <= last)
      dirs.emplace(t, e.path().string());
  std::vector<std::map<std::string, int64_t>> result;
  for (auto& [t, d] : dirs)
    result.push_back(read_word_totals(d));
  return result;
}

/// Files moved into a watched directory (written elsewhere, then renamed in),
/// and the word totals they add up to.
struct file_feed {
  file_feed(wordcount_cluster& cluster, std::string dir, uint64_t seed = 500)
    : c(cluster), in(std::move(dir)), seed(seed) {
  }

  wordcount_cluster& c;
  std::string in;
  uint64_t seed;
  std::map<std::string, int64_t> expected;
  int files = 0;

  void add() {
    auto text = make_text(150 + files * 13, seed + files);
    for (auto& [w, n] : count_words(text))
      expected[w] += n;
    move_in(c.dir, in, "f" + std::to_string(files++), text);
  }

  /// Every file so far counted exactly once (batch counts summed over every
  /// batch directory: a file counted twice or lost would show).
  bool exact() const {
    return read_word_totals(c.output()) == expected;
  }

  /// With --stateful: the newest batch's running totals are those of every
  /// file so far.
  bool exact_totals() const {
    auto newest = newest_batch(c.output());
    return !newest.empty() && read_word_totals(newest) == expected;
  }
};

/// Prints the logs of every process when a REQUIRE ends the test early: an
/// INFO taken before the failing wait would show the logs as they were then.
struct logs_on_failure {
  const wordcount_cluster& c;

  ~logs_on_failure() {
    if (std::uncaught_exceptions() > 0)
      std::fprintf(stderr, "%s\n", c.logs().c_str());
  }
};

} // namespace sluice::test
