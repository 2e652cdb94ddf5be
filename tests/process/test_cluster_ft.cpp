#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <signal.h>

#include "tests/process/cluster.hpp"

// Cluster fault tolerance with real processes, a driver and three workers
// on loopback, and no WAL: what survives a worker's kill -9 survives through
// the second copy of each received block (hot standby), the receiver's
// restart on another worker, and tasks re-run elsewhere.

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

constexpr auto long_wait = std::chrono::seconds{60};

void start_three_workers(wordcount_cluster& c) {
  c.start_driver();
  for (int i = 0; i < 3; ++i)
    c.start_worker();
  REQUIRE(c.await_workers(3));
}

} // namespace

TEST_CASE("kill -9 of the worker running a receiver restarts it on another "
          "worker and the stream goes on with nothing reported lost",
          "[process][cluster-ft]") {
  // 1000 lines/s for 8 s; the server gives the restarted receiver the rest
  // of the text, from the first line the killed one did not get whole.
  constexpr double rate = 1000;
  constexpr long long block_interval_ms = 100;
  auto text = make_tagged_text(8000, 41);
  text_server server{text, rate, /*resume=*/true};
  wordcount_cluster c;
  c.app_args = {"--source=socket://127.0.0.1:" + std::to_string(server.port()),
                "--batch-interval=500ms",
                "--sluice.block-interval=" + std::to_string(block_interval_ms) + "ms",
                "--sluice.stop-gracefully-on-shutdown=true"};
  logs_on_failure dump{c};
  start_three_workers(c);
  auto placed = c.await_receiver();
  auto victim = c.worker_of(placed.node);
  REQUIRE(victim < c.workers.size());
  std::mt19937 rng{std::random_device{}()};
  REQUIRE(c.await_batches_with_records(std::uniform_int_distribution<size_t>{2, 4}(rng)));
  auto at = server.lines_sent() + std::uniform_int_distribution<size_t>{0, 500}(rng);
  REQUIRE(wait_until([&] { return server.lines_sent() >= at; }));
  REQUIRE_FALSE(server.finished());
  auto before_kill = c.mark();
  c.workers[victim]->signal(SIGKILL);
  REQUIRE(c.workers[victim]->wait() != -1);

  // Restarted elsewhere, it reconnects and gets the rest of the text.
  auto restarted = c.await_receiver(before_kill, placed.node);
  auto host = c.worker_of(restarted.node);
  CHECK(host < c.workers.size());
  CHECK(host != victim);
  REQUIRE(wait_until([&] { return server.sent(); }, long_wait));
  REQUIRE(c.await_empty_batches(c.mark(), 2));

  auto totals = read_word_totals(c.output());
  auto counted = tagged(totals);
  INFO((counted.not_once.empty() ? std::string{} : counted.not_once.front()));
  CHECK(counted.not_once.empty());
  // What was counted is the text but one range [k, resumed): the lines the
  // killed receiver had buffered or that were in flight to it. Every line
  // the restarted receiver got is counted: the stream went on.
  auto starts = server.client_starts();
  REQUIRE(starts.size() >= 2);
  auto resumed = static_cast<long long>(starts[1]);
  long long k = 0;
  while (counted.lines.count(k) > 0)
    ++k;
  size_t after = 0;
  for (auto line : counted.lines)
    after += line >= resumed ? 1 : 0;
  CHECK(k <= resumed);
  CHECK(after == 8000 - starts[1]);
  CHECK(counted.lines.size() == static_cast<size_t>(k) + after);
  // Nothing a batch took was lost: the records of the driver's batches add
  // up to the lines counted, though the killed worker held the first copy
  // of every block its receiver cut (no WAL here: only the second copies
  // and the copies the tracker made of them after the loss were left).
  uint64_t batch_total = 0;
  for (auto n : batch_records(c.driver->err()))
    batch_total += n;
  CHECK(batch_total == counted.lines.size());
  CHECK(c.driver->err().find("jobs failed") == std::string::npos);
  auto lost = static_cast<size_t>(resumed - k);
  auto bound = static_cast<size_t>(rate * (block_interval_ms + 1000) / 1000);
  std::printf("receiver worker kill: %zu lines lost (bound %zu), restarted on %s\n",
              lost, bound, restarted.node.c_str());
  CHECK(lost <= bound);

  c.driver->signal(SIGTERM);
  CHECK(exited_with(c.driver->wait(), 0));
  CHECK(read_word_totals(c.output()) == totals);
}

TEST_CASE("kill -9 of two workers one after the other leaves one that goes on "
          "with one copy of each block",
          "[process][cluster-ft]") {
  constexpr double rate = 1000;
  auto text = make_tagged_text(7000, 43);
  text_server server{text, rate};
  wordcount_cluster c;
  c.app_args = {"--source=socket://127.0.0.1:" + std::to_string(server.port()),
                "--batch-interval=500ms", "--sluice.block-interval=100ms",
                "--sluice.stop-gracefully-on-shutdown=true"};
  logs_on_failure dump{c};
  start_three_workers(c);
  auto placed = c.await_receiver();
  auto keeper = c.worker_of(placed.node);
  REQUIRE(keeper < c.workers.size());
  // The two workers without the receiver go, one after the other, each
  // while the stream runs: their tasks and the second copies they held
  // move to the workers left.
  size_t batches = 2;
  for (size_t i = 0; i < c.workers.size(); ++i) {
    if (i == keeper)
      continue;
    REQUIRE(c.await_batches_with_records(batches));
    batches += 3;
    REQUIRE_FALSE(server.finished());
    c.workers[i]->signal(SIGKILL);
    REQUIRE(c.workers[i]->wait() != -1);
  }
  auto& survivor = *c.workers[keeper];
  // Alone, the receiver's worker keeps one copy of each block and says so.
  CHECK(wait_until([&] {
    return survivor.err().find("replication degraded") != std::string::npos;
  }));
  REQUIRE(wait_until([&] { return server.sent(); }, long_wait));
  REQUIRE(c.await_empty_batches(c.mark(), 2));
  // The receiver never died: every line is counted exactly once.
  auto totals = read_word_totals(c.output());
  CHECK(totals == count_words(text));
  CHECK(c.driver->err().find("jobs failed") == std::string::npos);
  c.driver->signal(SIGTERM);
  CHECK(exited_with(c.driver->wait(), 0));
  CHECK(exited_with(survivor.wait(), 0));
}

TEST_CASE("kill -9 of a worker while a cluster counts files moved into a "
          "directory loses and doubles nothing",
          "[process][cluster-ft]") {
  wordcount_cluster c;
  auto in = c.dir / "in";
  auto staging = c.dir / "staging";
  fs::create_directories(in);
  fs::create_directories(staging);
  c.app_args = {"--source=dir://" + in, "--batch-interval=200ms",
                "--sluice.stop-gracefully-on-shutdown=true"};
  logs_on_failure dump{c};
  start_three_workers(c);
  std::map<std::string, int64_t> expected;
  std::mt19937 rng{std::random_device{}()};
  auto kill_after = std::uniform_int_distribution<int>{2, 6}(rng);
  for (int i = 0; i < 12; ++i) {
    auto text = make_text(2000 + i * 100, 300 + i);
    for (auto& [w, n] : count_words(text))
      expected[w] += n;
    auto name = "file-" + std::to_string(i) + ".txt";
    write_file(staging + "/" + name, text);
    fs::rename(staging + "/" + name, in + "/" + name);
    if (i == kill_after) {
      // At once, while this file's tasks may run on the worker killed.
      c.workers[1]->signal(SIGKILL);
      REQUIRE(c.workers[1]->wait() != -1);
    }
    auto want = expected;
    REQUIRE(wait_until([&] { return read_word_totals(c.output()) == want; },
                       long_wait));
  }
  CHECK(c.driver->err().find(" lost (") != std::string::npos);
  CHECK(c.driver->err().find("jobs failed") == std::string::npos);
  c.driver->signal(SIGTERM);
  CHECK(exited_with(c.driver->wait(), 0));
  CHECK(read_word_totals(c.output()) == expected);
}
