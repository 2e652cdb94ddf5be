#include <catch2/catch.hpp>

#include <filesystem>
#include <random>
#include <signal.h>

#include "tests/process/cluster.hpp"

// Recovery of a killed driver (docs/contracts.md, "Recovery";
// docs/recovery.md), with real processes: the driver is killed with SIGKILL
// at random moments while data keeps arriving, and restarted on the same
// port with the same checkpoint directory; its workers keep running and
// reconnect.

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

/// Kills the driver once it completed between 1 and 4 new batches (a random
/// moment that is still a condition, not a sleep), then restarts it on the
/// same port, so workers find it again.
void kill_and_restart_driver(wordcount_cluster& c, std::mt19937& rng) {
  auto batches = std::uniform_int_distribution<size_t>{1, 4}(rng);
  REQUIRE(wait_until([&] { return completed_batches(*c.driver) >= batches; },
                     std::chrono::seconds{60}));
  c.driver->signal(SIGKILL);
  c.driver->wait();
  c.old_drivers.push_back(std::move(c.driver));
  c.start_driver(c.port);
}


} // namespace

TEST_CASE("stateful totals over a directory stream stay exact across repeated "
          "kill -9 of the driver",
          "[process][recovery]") {
  wordcount_cluster c;
  auto in = c.dir / "in";
  fs::create_directories(in);
  c.app_args = {"--source=dir://" + in, "--batch-interval=200ms", "--stateful",
                "--checkpoint=" + (c.dir / "ckpt"),
                "--sluice.stop-gracefully-on-shutdown=true"};
  c.start_driver();
  c.start_worker();
  c.start_worker();
  REQUIRE(c.await_workers(2));
  std::mt19937 rng{std::random_device{}()};
  std::map<std::string, int64_t> expected;
  int files = 0;
  auto add_file = [&] {
    auto text = make_text(200 + files * 7, 300 + files);
    for (auto& [w, n] : count_words(text))
      expected[w] += n;
    move_in(c.dir, in, "f" + std::to_string(files++), text);
  };
  for (int round = 0; round < 5; ++round) {
    // Files arrive before, during and after each kill.
    add_file();
    add_file();
    kill_and_restart_driver(c, rng);
    add_file();
  }
  REQUIRE(c.await_workers(2));
  long long exact_at = 0; // the newest batch when the totals were exact
  auto done = [&] {
    auto newest = newest_batch(c.output());
    if (newest.empty() || read_word_totals(newest) != expected)
      return false;
    exact_at = std::stoll(fs::path{newest}.filename().string());
    return true;
  };
  bool exact = wait_until(done, std::chrono::seconds{60});
  INFO(c.logs());
  REQUIRE(exact);
  // Every batch directory up to that one is complete, and totals only grow:
  // no file was counted twice at any point, and none was lost. (The driver
  // goes on meanwhile: a newer directory may still lack part files.)
  auto per_batch = totals_per_batch(c.output(), exact_at);
  for (size_t i = 1; i < per_batch.size(); ++i)
    for (auto& [w, n] : per_batch[i - 1]) {
      INFO("batch " << i << " word " << w);
      CHECK(per_batch[i][w] >= n);
      CHECK(n <= expected[w]);
    }
  c.driver->signal(SIGTERM);
  CHECK(exited_with(c.driver->wait(), 0));
  for (auto& w : c.workers)
    CHECK(exited_with(w->wait(), 0));
  CHECK(read_word_totals(newest_batch(c.output())) == expected);
}

TEST_CASE("a socket stream with the WAL on is counted exactly once across "
          "repeated kill -9 of the driver",
          "[process][recovery]") {
  // 30000 lines at 4000 lines/s: about 8 s of stream, over which the driver
  // dies several times.
  auto text = make_text(30000, 11);
  text_server server{text};
  wordcount_cluster c;
  c.app_args = {"--source=socket://127.0.0.1:" + std::to_string(server.port()),
                "--batch-interval=250ms", "--wal",
                "--checkpoint=" + (c.dir / "ckpt"),
                "--sluice.receiver.max-rate=4000",
                "--sluice.stop-gracefully-on-shutdown=true"};
  c.start_driver();
  c.start_worker();
  c.start_worker();
  REQUIRE(c.await_workers(2));
  std::mt19937 rng{std::random_device{}()};
  for (int round = 0; round < 4; ++round)
    kill_and_restart_driver(c, rng);
  REQUIRE(wait_until([&] { return server.sent(); }, std::chrono::seconds{60}));
  auto expected = count_words(text);
  // Per-batch counts summed over every batch directory: a block counted in
  // two batches, or lost, would show.
  bool exact = wait_until([&] { return read_word_totals(c.output()) == expected; },
                          std::chrono::seconds{60});
  INFO(c.logs());
  auto got = read_word_totals(c.output());
  for (auto& [w, n] : expected) {
    INFO(w);
    CHECK(got[w] == n);
  }
  REQUIRE(exact);
  c.driver->signal(SIGTERM);
  CHECK(exited_with(c.driver->wait(), 0));
  for (auto& w : c.workers)
    CHECK(exited_with(w->wait(), 0));
  CHECK(read_word_totals(c.output()) == expected);
}

TEST_CASE("a driver refuses to recover a checkpoint of a different stateful "
          "application",
          "[process][recovery]") {
  temp_dir dir{"sluice-mismatch"};
  auto in = dir / "in";
  fs::create_directories(in);
  auto ckpt = dir / "ckpt";
  {
    child_process p{{wordcount_binary(), "--local=1", "--source=dir://" + in,
                     "--output=" + (dir / "out"), "--batch-interval=200ms",
                     "--stateful", "--checkpoint=" + ckpt},
                    dir.path(), "first"};
    REQUIRE(wait_until([&] { return completed_batches(p) >= 2; }));
    p.signal(SIGKILL);
    p.wait();
  }
  // Same directory, but without the stateful operator.
  child_process p{{wordcount_binary(), "--local=1", "--source=dir://" + in,
                   "--output=" + (dir / "out"), "--batch-interval=200ms",
                   "--checkpoint=" + ckpt},
                  dir.path(), "second"};
  CHECK(exited_with(p.wait(), 1));
  CHECK_THAT(p.err(), Catch::Contains("cannot recover from")
                        && Catch::Contains("which this application does not have"));
}
