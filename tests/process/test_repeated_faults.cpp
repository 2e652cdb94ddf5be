#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <signal.h>

#include "tests/process/supervised.hpp"

// Repeated faults with real processes: a supervised driver and three
// workers, faults one after the other on a seeded schedule (the seed is
// printed, and SLUICE_TEST_SEED replays it), and a check of every line or
// file at the end. These are the defects a chaos harness found first.

using namespace sluice::test;

namespace {

constexpr auto long_wait = std::chrono::seconds{60};

/// The seed of a test's fault schedule: SLUICE_TEST_SEED when set (to replay
/// a failure), otherwise a fresh one; printed either way.
uint32_t schedule_seed(const char* test) {
  uint32_t seed = 0;
  if (auto env = std::getenv("SLUICE_TEST_SEED"))
    seed = static_cast<uint32_t>(std::stoul(env));
  else
    seed = std::random_device{}();
  std::printf("%s: fault schedule seed %u (SLUICE_TEST_SEED replays it)\n", test,
              seed);
  return seed;
}

/// Occurrences of `what` in `log` from byte `from` on.
size_t count_from(const std::string& log, const std::string& what, size_t from = 0) {
  size_t n = 0;
  for (auto pos = log.find(what, from); pos != std::string::npos;
       pos = log.find(what, pos + 1))
    ++n;
  return n;
}

/// The node the receiver of the (only) stream runs on now: the last
/// placement or adoption in the driver's events.
std::string current_receiver(const wordcount_cluster& c) {
  std::string node;
  for (auto& e : c.events())
    if (e["event"] == "receiver" && e["what"] == "placed")
      node = e["node"].get<std::string>();
  return node;
}

/// Whether the driver declared `node` lost after event `from`.
bool node_lost(const wordcount_cluster& c, const std::string& node, size_t from) {
  auto all = c.events();
  for (size_t i = from; i < all.size(); ++i)
    if (all[i]["event"] == "node" && all[i]["what"] == "lost" && all[i]["node"] == node)
      return true;
  return false;
}

/// A word count over `server` with the WAL on: 500 ms batches, 100 ms blocks.
std::vector<std::string> socket_wal_args(const wordcount_cluster& c,
                                         const text_server& server) {
  return {"--source=socket://127.0.0.1:" + std::to_string(server.port()),
          "--batch-interval=500ms", "--sluice.block-interval=100ms", "--wal",
          "--checkpoint=" + (c.dir / "ckpt"),
          "--sluice.stop-gracefully-on-shutdown=true"};
}

/// What a resuming text_server's connections lost: lines missing inside
/// the range a connection carried (holes: blocks lost), and the longest run
/// missing at the end of one (what was in flight when it closed).
struct connection_losses {
  size_t connections = 0;
  size_t holes = 0;
  size_t worst_tail = 0;
};

connection_losses losses_of(const text_server& server, const tagged_counts& counted,
                            size_t total_lines) {
  connection_losses result;
  auto starts = server.client_starts();
  starts.push_back(total_lines);
  result.connections = starts.size() - 1;
  for (size_t i = 0; i + 1 < starts.size(); ++i) {
    auto begin = static_cast<long long>(starts[i]);
    auto end = static_cast<long long>(starts[i + 1]);
    auto last = begin - 1;
    for (auto line = begin; line < end; ++line)
      if (counted.lines.count(line) > 0)
        last = line;
    for (auto line = begin; line < last; ++line)
      result.holes += counted.lines.count(line) == 0 ? 1 : 0;
    result.worst_tail = std::max(result.worst_tail, static_cast<size_t>(end - last - 1));
  }
  return result;
}

/// Checks the output of a word count over a resuming `server` once the
/// whole text was sent and counted: no line counted twice, and each
/// connection's lines [start, next start) counted but a tail, the lines in
/// flight to a receiver when its connection closed (a socket stream has no
/// acknowledgements; the receiver reads what already arrived before it
/// closes). A receiver that dropped blocks it had not reported, or stored
/// nothing while its node was cut off, leaves a hole or a long tail. The
/// bound, 0.1 s of stream, is generous for what the server writes between
/// the receiver's last read and its close.
connection_losses check_counted_once(const wordcount_cluster& c,
                                     const text_server& server, double rate,
                                     size_t total_lines, const char* label) {
  auto counted = tagged(read_word_totals(c.output()));
  INFO((counted.not_once.empty() ? std::string{} : counted.not_once.front()));
  CHECK(counted.not_once.empty());
  auto lost = losses_of(server, counted, total_lines);
  auto bound = static_cast<size_t>(rate / 10);
  std::printf("%s: %zu connections, %zu lines counted of %zu, %zu in holes, "
              "longest tail %zu (bound %zu)\n",
              label, lost.connections, counted.lines.size(), total_lines,
              lost.holes, lost.worst_tail, bound);
  INFO(c.logs());
  CHECK(lost.holes == 0);
  CHECK(lost.worst_tail <= bound);
  return lost;
}

} // namespace

TEST_CASE("a driver that stops on state_lost leaves its workers running and "
          "its restart adopts them with exact totals",
          "[process][repeated-faults]") {
  wordcount_cluster c;
  auto in = c.dir / "in";
  logs_on_failure dump{c};
  start_supervised_driver(c, in);
  supervised_children_guard guard{c.driver.get()};
  for (int i = 0; i < 3; ++i)
    c.start_worker();
  REQUIRE(c.await_workers(3));
  file_feed feed{c, in, 90};
  feed.add();
  feed.add();
  REQUIRE(wait_until([&] { return feed.exact_totals(); }, long_wait));

  // Workers are killed in a seeded order, each replaced by a fresh one, until
  // one took the only copy of a state partition with it (one that held none
  // costs no restart: the next batch's totals are exact without one).
  std::mt19937 rng{schedule_seed("state_lost")};
  const std::string lost_text = "had its only copy on worker";
  size_t killed = 0;
  while (count_from(c.driver->err(), lost_text) == 0) {
    REQUIRE(killed < 8);
    std::vector<size_t> alive;
    for (size_t i = 0; i < c.workers.size(); ++i)
      if (c.workers[i]->running())
        alive.push_back(i);
    auto victim = alive[std::uniform_int_distribution<size_t>{0, alive.size() - 1}(rng)];
    c.workers[victim]->signal(SIGKILL);
    REQUIRE(c.workers[victim]->wait() != -1);
    ++killed;
    feed.add();
    REQUIRE(wait_until(
      [&] {
        return count_from(c.driver->err(), lost_text) > 0 || feed.exact_totals();
      },
      long_wait));
    if (count_from(c.driver->err(), lost_text) > 0)
      break;
    c.start_worker();
    REQUIRE(c.await_workers(3 + killed));
  }
  std::vector<child_process*> survivors;
  for (auto& w : c.workers)
    if (w->running())
      survivors.push_back(w.get());
  REQUIRE(survivors.size() == 2);

  // The supervisor restarts the driver, which recovers and finds the
  // surviving workers still there: they kept looking for it instead of
  // shutting down.
  REQUIRE(wait_until([&] { return c.count_events("recovery", "started") > 0; }));
  auto all = c.events();
  size_t recovered_at = 0;
  while (all[recovered_at]["event"] != "recovery")
    ++recovered_at;
  REQUIRE(wait_until([&] {
    return c.count_events("node", "joined", recovered_at) >= survivors.size();
  }));
  CHECK(c.count_events("node", "lost") >= 1);
  for (auto* w : survivors) {
    CHECK(w->running());
    CHECK(w->err().find("shutting down") == std::string::npos);
  }
  feed.add();
  bool exact = wait_until([&] { return feed.exact_totals(); }, long_wait);
  INFO(c.logs());
  CHECK(exact);
  c.driver->signal(SIGTERM);
  CHECK(exited_with(c.driver->wait(), 0));
  for (auto* w : survivors)
    CHECK(exited_with(w->wait(), 0));
  CHECK(read_word_totals(newest_batch(c.output())) == feed.expected);
}

TEST_CASE("socket lines are counted once through repeated stops of the "
          "receiver's worker past its connection timeout, a driver kill and a "
          "worker kill, with the WAL on",
          "[process][repeated-faults]") {
  // 250 lines/s for 32 s, longer than the schedule: every fault meets a
  // running stream. The server resumes each new connection at the first line
  // the previous one did not get whole.
  constexpr double rate = 250;
  constexpr size_t total_lines = 8000;
  auto text = make_tagged_text(total_lines, 61);
  text_server server{text, rate, /*resume=*/true};
  wordcount_cluster c;
  c.app_args = socket_wal_args(c, server);
  logs_on_failure dump{c};
  start_supervised(c);
  supervised_children_guard guard{c.driver.get()};
  for (int i = 0; i < 3; ++i)
    c.start_worker();
  REQUIRE(c.await_workers(3));
  c.await_receiver();
  REQUIRE(c.await_batches_with_records(2));

  std::mt19937 rng{schedule_seed("socket faults")};
  std::vector<std::string> faults{"stop", "stop", "driver", "worker"};
  std::shuffle(faults.begin(), faults.end(), rng);
  size_t handovers = 0;
  for (auto& fault : faults) {
    // A seeded stretch of stream between faults, measured by the server's
    // progress (no sleep).
    auto at = server.lines_sent() + std::uniform_int_distribution<size_t>{100, 500}(rng);
    REQUIRE(wait_until([&] { return server.lines_sent() >= at; }));
    REQUIRE_FALSE(server.sent());
    auto node = current_receiver(c);
    auto host = c.worker_of(node);
    REQUIRE(host < c.workers.size());
    auto from = c.mark();
    std::printf("socket faults: %s (receiver on %s) at line %zu\n", fault.c_str(),
                node.c_str(), server.lines_sent());
    if (fault == "stop") {
      // Stopped until the driver declared it lost (its connection timed
      // out): its receiver is restarted elsewhere, and when it continues it
      // learns it must rejoin as a new incarnation.
      auto handed = count_from(c.workers[host]->err(), "handed its blocks over");
      c.workers[host]->signal(SIGSTOP);
      REQUIRE(wait_until([&] { return node_lost(c, node, from); }));
      c.workers[host]->signal(SIGCONT);
      ++handovers;
      REQUIRE(wait_until([&] {
        return count_from(c.workers[host]->err(), "handed its blocks over") > handed;
      }));
      c.await_receiver(from, node);
    } else if (fault == "driver") {
      auto drivers = supervised_drivers(*c.driver);
      REQUIRE(::kill(drivers.back(), SIGKILL) == 0);
      REQUIRE(wait_until([&] {
        return supervised_drivers(*c.driver).size() > drivers.size();
      }));
      // The new driver adopts the receiver where it runs.
      c.await_receiver(from);
    } else {
      // A worker without the receiver, replaced by a fresh one.
      size_t victim = c.workers.size();
      for (size_t i = 0; i < c.workers.size(); ++i)
        if (i != host && c.workers[i]->running())
          victim = i;
      REQUIRE(victim < c.workers.size());
      c.workers[victim]->signal(SIGKILL);
      REQUIRE(c.workers[victim]->wait() != -1);
      c.start_worker();
    }
  }
  REQUIRE(wait_until([&] { return server.sent(); }, long_wait));
  REQUIRE(c.await_empty_batches(c.mark(), 2));

  std::printf("socket faults: %zu handovers\n", handovers);
  check_counted_once(c, server, rate, total_lines, "socket faults");
  CHECK(c.driver->err().find("jobs failed") == std::string::npos);
  c.driver->signal(SIGTERM);
  CHECK(exited_with(c.driver->wait(), 0));
}

TEST_CASE("a worker that comes back to a restarted driver after its stream was "
          "placed elsewhere hands its receiver over and no line is lost",
          "[process][repeated-faults]") {
  constexpr double rate = 250;
  constexpr size_t total_lines = 5000;
  auto text = make_tagged_text(total_lines, 67);
  text_server server{text, rate, /*resume=*/true};
  wordcount_cluster c;
  c.app_args = socket_wal_args(c, server);
  logs_on_failure dump{c};
  c.start_driver();
  for (int i = 0; i < 3; ++i)
    c.start_worker();
  REQUIRE(c.await_workers(3));
  auto node = c.await_receiver().node;
  auto host = c.worker_of(node);
  REQUIRE(host < c.workers.size());
  REQUIRE(c.await_batches_with_records(2));
  // The receiver's worker hangs while the driver dies and comes back: the
  // new driver waits for workers to bring their receivers back, then
  // places the stream on another worker.
  c.workers[host]->signal(SIGSTOP);
  c.driver->signal(SIGKILL);
  c.driver->wait();
  c.old_drivers.push_back(std::move(c.driver));
  c.start_driver(c.port);
  c.await_receiver(0, node);
  // Back, it registers with its receiver still running; the driver keeps
  // the new one and has the old one hand its blocks over.
  c.workers[host]->signal(SIGCONT);
  REQUIRE(wait_until([&] {
    return count_from(c.driver->err(), "the second hands its blocks over") > 0;
  }));
  REQUIRE(wait_until([&] {
    return count_from(c.workers[host]->err(), "handed its blocks over") > 0;
  }));
  REQUIRE(wait_until([&] { return server.sent(); }, long_wait));
  REQUIRE(c.await_empty_batches(c.mark(), 2));

  auto lost = check_counted_once(c, server, rate, total_lines, "late worker");
  CHECK(lost.connections >= 2);
  c.driver->signal(SIGTERM);
  CHECK(exited_with(c.driver->wait(), 0));
}
