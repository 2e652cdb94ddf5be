#include <catch2/catch.hpp>

#include <string>

#include "runtime/cluster/pending_blocks.hpp"

// The receiver's rules for when a block it cut is reported to the tracker
// (runtime/cluster/pending_blocks), driven without an actor system.

using namespace sluice;

namespace {

block_ref ref(const std::string& id, uint64_t records = 10) {
  block_ref r;
  r.id = id;
  r.records = records;
  r.bytes = 100;
  return r;
}

buffer some_bytes() {
  std::vector<uint8_t> bytes(96, 7);
  return buffer::copy_of(bytes.data(), bytes.size());
}

wal_ref at(uint64_t offset) {
  return wal_ref{"wal", "seg-1", offset, 100};
}

} // namespace

TEST_CASE("a block is reported only once its local copy, its WAL record and "
          "its second copy are written",
          "[pending_blocks]") {
  pending_blocks p{true};
  CHECK(p.set_peers(2, {"w2", "w3"}).reports.empty());
  auto fx = p.cut(ref("b1"), some_bytes());
  CHECK(fx.local_puts == std::vector<std::string>{"b1"});
  REQUIRE(fx.wal_appends == std::vector<std::string>{"b1"});
  REQUIRE(fx.replica_puts.size() == 1);
  CHECK(fx.replica_puts[0].peer == "w2");
  CHECK(p.stored("b1", "w1").reports.empty());
  CHECK(p.wal_appended("b1", at(0)).reports.empty());
  CHECK(p.bytes("b1") != nullptr);
  auto done = p.replica_stored("b1", fx.replica_puts[0].attempt, "w2");
  REQUIRE(done.reports.size() == 1);
  CHECK(done.reports[0].locations == std::vector<std::string>{"w1", "w2"});
  CHECK(done.reports[0].wal.segment == "seg-1");
  CHECK(p.bytes("b1")->size() == 96); // kept until acknowledged
  CHECK(p.blocks_reported() == 1);
  CHECK(p.records_reported() == 10);
  CHECK_FALSE(p.empty());
  p.acked("b1");
  CHECK(p.empty());
}

TEST_CASE("no block is reported before the tracker named the replication",
          "[pending_blocks]") {
  pending_blocks p{false};
  auto fx = p.cut(ref("b1"), some_bytes());
  CHECK(fx.replica_puts.empty());
  CHECK(p.stored("b1", "w1").reports.empty());
  auto named = p.set_peers(1, {"w2"});
  REQUIRE(named.reports.size() == 1);
  CHECK(named.reports[0].locations == std::vector<std::string>{"w1"});
}

TEST_CASE("a failed second copy moves to the next peer, and with none left the "
          "block keeps one copy and the streak is said once",
          "[pending_blocks]") {
  pending_blocks p{false};
  p.set_peers(2, {"w2", "w3"});
  auto fx = p.cut(ref("b1"), some_bytes());
  p.stored("b1", "w1");
  pending_effects next;
  REQUIRE(p.replica_failed("b1", fx.replica_puts[0].attempt, next));
  REQUIRE(next.replica_puts.size() == 1);
  CHECK(next.replica_puts[0].peer == "w3");
  // A stale answer to the first put changes nothing.
  pending_effects stale;
  CHECK_FALSE(p.replica_failed("b1", fx.replica_puts[0].attempt, stale));
  pending_effects last;
  REQUIRE(p.replica_failed("b1", next.replica_puts[0].attempt, last));
  CHECK(last.degraded == "no other worker took block b1");
  REQUIRE(last.reports.size() == 1);
  CHECK(last.reports[0].locations == std::vector<std::string>{"w1"});
  // The next block fails on its own peer too: the streak is not said again.
  auto fx2 = p.cut(ref("b2"), some_bytes());
  p.stored("b2", "w1");
  pending_effects a, b;
  p.replica_failed("b2", fx2.replica_puts[0].attempt, a);
  p.replica_failed("b2", a.replica_puts[0].attempt, b);
  CHECK(b.degraded.empty());
  // A copy that lands ends the streak.
  auto fx3 = p.cut(ref("b3"), some_bytes());
  p.stored("b3", "w1");
  CHECK(p.replica_stored("b3", fx3.replica_puts[0].attempt, "w2").replicated_again);
}

TEST_CASE("a block the WAL refused is held, never reported, and the oldest held "
          "block is retried one at a time",
          "[pending_blocks]") {
  pending_blocks p{true};
  p.set_peers(1, {});
  auto fx1 = p.cut(ref("in/0/w1/0/9"), some_bytes());
  p.stored("in/0/w1/0/9", "w1");
  CHECK(p.wal_failed("in/0/w1/0/9"));
  // While failing, new blocks are not appended at cut time.
  CHECK(p.cut(ref("in/0/w1/0/10"), some_bytes()).wal_appends.empty());
  p.stored("in/0/w1/0/10", "w1");
  CHECK_FALSE(p.wal_failed("in/0/w1/0/9")); // the streak is said once
  // The oldest by cut order, not by id ("10" sorts before "9").
  auto retry = p.retry_wal();
  REQUIRE(retry.wal_appends == std::vector<std::string>{"in/0/w1/0/9"});
  CHECK(p.retry_wal().wal_appends.empty()); // one append at a time
  auto ok = p.wal_appended("in/0/w1/0/9", at(0));
  CHECK(ok.wal_recovered);
  REQUIRE(ok.reports.size() == 1);
  CHECK(ok.wal_appends == std::vector<std::string>{"in/0/w1/0/10"});
  CHECK(p.wal_appended("in/0/w1/0/10", at(100)).reports.size() == 1);
  (void) fx1;
}

TEST_CASE("a block no copy holds is lost and never reported", "[pending_blocks]") {
  pending_blocks p{false};
  p.set_peers(1, {});
  p.cut(ref("b1"), some_bytes());
  auto fx = p.stored("b1", ""); // the local put failed, no WAL, one copy
  CHECK(fx.reports.empty());
  CHECK(fx.lost == std::vector<std::string>{"b1"});
  CHECK(p.empty());
}

TEST_CASE("a stop before the replication is known reports the blocks with one "
          "copy",
          "[pending_blocks]") {
  pending_blocks p{false};
  p.cut(ref("b1"), some_bytes());
  p.stored("b1", "w1");
  auto fx = p.stop();
  REQUIRE(fx.reports.size() == 1);
  CHECK(fx.reports[0].locations == std::vector<std::string>{"w1"});
}

TEST_CASE("peers that leave are dropped from puts under way and the block "
          "goes to a listed peer",
          "[pending_blocks]") {
  pending_blocks p{false};
  p.set_peers(2, {"w2", "w3"});
  auto fx = p.cut(ref("b1"), some_bytes());
  p.stored("b1", "w1");
  REQUIRE(fx.replica_puts[0].peer == "w2");
  auto moved = p.set_peers(2, {"w3"});
  REQUIRE(moved.replica_puts.size() == 1);
  CHECK(moved.replica_puts[0].peer == "w3");
  // The old put's late answer is ignored.
  CHECK(p.replica_stored("b1", fx.replica_puts[0].attempt, "w2").reports.empty());
  CHECK(p.replica_stored("b1", moved.replica_puts[0].attempt, "w3").reports.size() == 1);
}

TEST_CASE("a new tracker gets every reported block that was not acknowledged",
          "[pending_blocks]") {
  pending_blocks p{false};
  p.set_peers(1, {});
  p.cut(ref("b1"), some_bytes());
  p.cut(ref("b2"), some_bytes());
  p.cut(ref("b3"), some_bytes());
  p.stored("b1", "w1");
  p.stored("b2", "w1");
  p.acked("b1");
  auto again = p.reported();
  REQUIRE(again.size() == 1);
  CHECK(again[0].id == "b2");
}

TEST_CASE("a hand-over gives up second copies under way, puts again what the "
          "old store held and reports every block with the copies it has",
          "[pending_blocks]") {
  pending_blocks p{true};
  p.set_peers(2, {"w2"});
  // b1: written everywhere, reported to a tracker that died with the
  // connection (never acknowledged).
  auto fx1 = p.cut(ref("b1"), some_bytes());
  p.stored("b1", "old");
  p.wal_appended("b1", at(0));
  REQUIRE(p.replica_stored("b1", fx1.replica_puts[0].attempt, "w2").reports.size() == 1);
  // b2: its second copy hangs (a dead remote proxy waits for its timeout),
  // its local put is still under way.
  auto fx2 = p.cut(ref("b2"), some_bytes());
  p.wal_appended("b2", at(100));
  auto handed = p.hand_over("old");
  CHECK(handed.replica_puts.empty());
  CHECK(handed.reports.empty());
  REQUIRE(handed.local_puts == std::vector<std::string>{"b1"});
  REQUIRE(p.bytes("b1") != nullptr);
  CHECK(p.bytes("b1")->size() == 96);
  // b1 lands in the next BlockManager and is reported with that location
  // and the copy on w2, without counting twice.
  auto again = p.stored("b1", "new");
  REQUIRE(again.reports.size() == 1);
  CHECK(again.reports[0].locations == std::vector<std::string>{"new", "w2"});
  CHECK(p.blocks_reported() == 1);
  // b2's put landed in the old store after the hand-over: it is put again.
  auto late = p.stored("b2", "old");
  CHECK(late.reports.empty());
  CHECK(late.local_puts == std::vector<std::string>{"b2"});
  // The hung put's late answer changes nothing; b2 keeps one copy.
  CHECK(p.replica_stored("b2", fx2.replica_puts[0].attempt, "w2").reports.empty());
  auto last = p.stored("b2", "new");
  REQUIRE(last.reports.size() == 1);
  CHECK(last.reports[0].locations == std::vector<std::string>{"new"});
  CHECK(p.blocks_reported() == 2);
}

TEST_CASE("a hand-over by a node that keeps its store puts nothing again",
          "[pending_blocks]") {
  pending_blocks p{false};
  p.set_peers(1, {});
  p.cut(ref("b1"), some_bytes());
  auto handed = p.hand_over("");
  CHECK(handed.local_puts.empty());
  // The put still under way lands in the kept store and is reported there.
  auto fx = p.stored("b1", "w1");
  CHECK(fx.local_puts.empty());
  REQUIRE(fx.reports.size() == 1);
  CHECK(fx.reports[0].locations == std::vector<std::string>{"w1"});
}
