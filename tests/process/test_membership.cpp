#include <catch2/catch.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <set>
#include <regex>
#include <signal.h>

#include "tests/process/cluster.hpp"

// Membership with real processes: a worker that hangs (SIGSTOP) is declared
// lost by the middleman heartbeat and its work moves; once it continues it
// rejoins as a new incarnation. A worker started while the stream runs
// gets tasks.

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

/// A stopped process must not outlive the test, also when it fails: it is
/// continued (so it can be reaped) and killed.
struct continue_and_kill {
  child_process& p;

  ~continue_and_kill() {
    p.signal(SIGCONT);
    p.signal(SIGKILL);
  }
};

/// The node id a worker registered under, from its own log.
std::string node_of(const child_process& worker) {
  static const std::regex re{"(worker-\\S+): registered with the driver"};
  std::smatch m;
  auto log = worker.err();
  return std::regex_search(log, m, re) ? std::string{m[1]} : std::string{};
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

} // namespace

TEST_CASE("a hung worker is declared lost and its work moves and once it "
          "continues it rejoins as a new incarnation",
          "[process][membership]") {
  wordcount_cluster c;
  auto in = c.dir / "in";
  fs::create_directories(in);
  c.app_args = {"--source=dir://" + in, "--batch-interval=200ms",
                "--sluice.stop-gracefully-on-shutdown=true"};
  logs_on_failure dump{c};
  c.start_driver();
  for (int i = 0; i < 3; ++i)
    c.start_worker();
  REQUIRE(c.await_workers(3));
  file_feed feed{c, in};
  for (int i = 0; i < 3; ++i) {
    feed.add();
    REQUIRE(wait_until([&] { return feed.exact(); }, std::chrono::seconds{60}));
  }

  auto& victim = *c.workers[0];
  std::string node;
  REQUIRE(wait_until([&] { return !(node = node_of(victim)).empty(); }));
  continue_and_kill guard{victim};
  victim.signal(SIGSTOP);
  // Files keep arriving while it hangs; batches keep completing without it.
  feed.add();
  feed.add();
  // The middleman heartbeat declares it lost (the log, not a clock, says
  // when).
  REQUIRE(wait_until([&] {
    return contains(c.driver->err(), "worker " + node + " declared lost");
  }));
  REQUIRE(wait_until([&] { return feed.exact(); }, std::chrono::seconds{60}));
  feed.add();
  REQUIRE(wait_until([&] { return feed.exact(); }, std::chrono::seconds{60}));

  // Continued, it finds its connection gone, reconnects with its old id,
  // is told it was declared lost, and rejoins under a new one.
  victim.signal(SIGCONT);
  auto next = node + "-i2";
  REQUIRE(wait_until([&] {
    return contains(victim.err(), "rejoins as a new incarnation " + next);
  }));
  REQUIRE(wait_until([&] {
    return contains(c.driver->err(), "worker " + next + " joined with");
  }));
  CHECK(contains(c.driver->err(), "node " + node + " was declared lost"));
  // The new incarnation gets work, and what arrives now is counted once too.
  for (int i = 0; i < 4; ++i)
    feed.add();
  REQUIRE(wait_until([&] { return feed.exact(); }, std::chrono::seconds{60}));
  int more = 0;
  bool took_work = wait_until(
    [&] {
      if (contains(victim.err(), next + ": runs its first task"))
        return true;
      if (feed.exact() && more < 20) {
        feed.add(); // more files, so more tasks to place
        ++more;
      }
      return false;
    },
    std::chrono::seconds{60});
  CHECK(took_work);
  REQUIRE(wait_until([&] { return feed.exact(); }, std::chrono::seconds{60}));

  // A graceful stop ends every process, the rejoined one included, and the
  // totals stay exact: nothing was counted twice.
  c.driver->signal(SIGTERM);
  INFO(c.logs());
  CHECK(exited_with(c.driver->wait(), 0));
  for (auto& w : c.workers)
    CHECK(exited_with(w->wait(), 0));
  CHECK(feed.exact());
  CHECK_FALSE(contains(c.driver->err(), "jobs failed"));
}

TEST_CASE("a worker started after the stream began receives tasks",
          "[process][membership]") {
  wordcount_cluster c;
  auto in = c.dir / "in";
  fs::create_directories(in);
  c.app_args = {"--source=dir://" + in, "--batch-interval=200ms",
                "--sluice.stop-gracefully-on-shutdown=true"};
  logs_on_failure dump{c};
  c.start_driver();
  c.start_worker();
  c.start_worker();
  REQUIRE(c.await_workers(2));
  file_feed feed{c, in};
  for (int i = 0; i < 3; ++i) {
    feed.add();
    REQUIRE(wait_until([&] { return feed.exact(); }, std::chrono::seconds{60}));
  }

  auto& late = c.start_worker();
  REQUIRE(c.await_workers(3));
  std::string node;
  REQUIRE(wait_until([&] { return !(node = node_of(late)).empty(); }));
  // Files keep arriving until the late worker ran a task (its executor logs
  // its first one); each file is a few more tasks to place.
  bool took_work = wait_until(
    [&] {
      if (contains(late.err(), node + ": runs its first task"))
        return true;
      if (feed.files < 40 && feed.exact())
        feed.add();
      return false;
    },
    std::chrono::seconds{60});
  INFO(c.logs());
  CHECK(took_work);
  REQUIRE(wait_until([&] { return feed.exact(); }, std::chrono::seconds{60}));
  c.driver->signal(SIGTERM);
  CHECK(exited_with(c.driver->wait(), 0));
  for (auto& w : c.workers)
    CHECK(exited_with(w->wait(), 0));
  CHECK(feed.exact());
}

TEST_CASE("a hung worker running a receiver rejoins with that receiver handed "
          "over and no line is counted twice or lost but in flight",
          "[process][membership]") {
  // Paced, so that the stream still runs when the worker hangs; the server
  // sends to its first client only, so a receiver restarted elsewhere gets
  // nothing and what was counted is exactly a prefix of the text.
  auto text = make_tagged_text(40000, 31);
  text_server server{text, 1000};
  wordcount_cluster c;
  c.app_args = {"--source=socket://127.0.0.1:" + std::to_string(server.port()),
                "--batch-interval=300ms", "--sluice.block-interval=100ms",
                "--sluice.stop-gracefully-on-shutdown=true"};
  logs_on_failure dump{c};
  c.start_driver();
  for (int i = 0; i < 3; ++i)
    c.start_worker();
  REQUIRE(c.await_workers(3));
  auto node = c.await_receiver().node;
  auto index = c.worker_of(node);
  REQUIRE(index < c.workers.size());
  auto* victim = c.workers[index].get();
  REQUIRE(c.await_batches_with_records(2));
  REQUIRE_FALSE(server.finished());
  continue_and_kill guard{*victim};
  auto before = c.mark();
  victim->signal(SIGSTOP);
  REQUIRE(wait_until([&] {
    return contains(c.driver->err(), "worker " + node + " declared lost");
  }));
  // The tracker starts the stream's receiver on another worker.
  c.await_receiver(before, node);
  victim->signal(SIGCONT);
  REQUIRE(wait_until([&] {
    return contains(victim->err(), "rejoins as a new incarnation " + node
                                     + "-i2 (handing over 1 receivers");
  }));
  // What its receiver read while the node hung goes to the driver too.
  REQUIRE(wait_until([&] {
    return contains(victim->err(), "handed its blocks over and stopped");
  }));
  REQUIRE(server.finished()); // its connection closed at the hand-over
  REQUIRE(wait_until([&] {
    return contains(c.driver->err(), "worker " + node + "-i2 joined with");
  }));
  // Every block reported before the hang was taken by a batch generated
  // before two empty batches completed (batches complete in order).
  REQUIRE(c.await_empty_batches(c.mark(), 2));

  INFO(c.logs());
  auto totals = read_word_totals(c.output());
  auto tags = tagged(totals);
  auto& counted = tags.lines;
  CHECK(tags.not_once.empty());
  // A prefix of the text: every line its receiver read, before, during and
  // after the hang, up to its hand-over; nothing came twice. Lost are only
  // the lines in flight when it closed its connection (the server counts
  // what its kernel accepted): 0.1 s of stream is a generous bound.
  auto k = static_cast<size_t>(counted.empty() ? 0 : *counted.rbegin() + 1);
  CHECK(k > 0);
  CHECK(counted.size() == k);
  CHECK(totals == count_words(first_lines(text, k)));
  auto sent = server.lines_sent();
  std::printf("hung receiver: %zu lines sent, %zu counted\n", sent, k);
  CHECK(k <= sent);
  CHECK(sent - k <= 100);
  c.driver->signal(SIGTERM);
  CHECK(exited_with(c.driver->wait(), 0));
  for (auto& w : c.workers)
    CHECK(exited_with(w->wait(), 0));
  CHECK(read_word_totals(c.output()) == totals);
}
