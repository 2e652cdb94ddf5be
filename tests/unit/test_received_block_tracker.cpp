#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>

#include "runtime/cluster/held_drops.hpp"
#include "runtime/cluster/received_block_tracker.hpp"
#include "runtime/recovery/driver_log.hpp"
#include "tests/support/helpers.hpp"

// The driver's received-block tracker (runtime/cluster/received_block_tracker)
// without actors: log, then apply; a replayed driver log gives the live
// state back; drops for a restarting BlockManager wait for its refresh.

using namespace sluice;
using namespace sluice::test;

namespace {

block_ref block(const std::string& id, std::vector<std::string> locations = {"w1"}) {
  block_ref b;
  b.id = id;
  b.records = 3;
  b.bytes = 64;
  b.locations = std::move(locations);
  b.wal = wal_ref{"/ckpt/receiver-wal/0/w1-0", "log-0-60000", 16, 64};
  return b;
}

input_partition from_file(const std::string& f) {
  input_partition p;
  p.is_file = true;
  p.file = f;
  return p;
}

input_partition from_queue(const std::string& id) {
  input_partition p;
  p.block = block(id, {"driver"});
  p.records = p.block.records;
  return p;
}

/// Streams 0 and 1 receive blocks; node 2 is a directory stream, node 3 a
/// queue stream (the generator's inputs).
constexpr uint32_t dir_node = 2;
constexpr uint32_t queue_node = 3;

batch_inputs driver_inputs(time_ms t) {
  batch_inputs others;
  others[dir_node] = {from_file("/in/f" + std::to_string(t))};
  others[queue_node] = {from_queue("q/3/" + std::to_string(t))};
  return others;
}

std::string render(const block_ref& b) {
  std::ostringstream out;
  out << b.id << "(" << b.records << "," << b.bytes << ",";
  for (auto& l : b.locations)
    out << l << ";";
  out << b.wal.dir << "," << b.wal.segment << "," << b.wal.offset << ","
      << b.wal.length << ")";
  return out.str();
}

/// The tracker's logged state as text (a readable difference when two
/// differ): unallocated blocks, allocations, known ids.
std::string render(const received_block_tracker& t) {
  std::ostringstream out;
  for (auto& [stream, refs] : t.unallocated()) {
    out << "unallocated " << stream << ":";
    for (auto& r : refs)
      out << " " << render(r);
    out << "\n";
  }
  for (auto& [batch, inputs] : t.allocations())
    for (auto& [node, parts] : inputs) {
      out << "batch " << batch << " node " << node << ":";
      for (auto& p : parts)
        out << " " << (p.is_file ? "file " + p.file : render(p.block)) << "/"
            << p.records;
      out << "\n";
    }
  out << "known:";
  for (auto& id : t.known())
    out << " " << id;
  return out.str();
}

/// A driver log that records what it is asked to write, or fails when told
/// to; `on_write` runs inside each write (to look at the tracker then).
struct recording_log : block_tracker_log {
  std::vector<std::string> records;
  bool fail = false;
  std::function<void()> on_write;

  caf::error write(std::string what) {
    if (on_write)
      on_write();
    if (fail)
      return make_error(errc::io_failed, "disk full (test)");
    records.push_back(std::move(what));
    return caf::none;
  }

  caf::error block_added(time_ms now, uint32_t stream, const block_ref& ref) override {
    return write("added " + std::to_string(now) + " " + std::to_string(stream) + " "
                 + ref.id);
  }

  caf::error batch_allocated(time_ms now, time_ms batch,
                             const batch_inputs& inputs) override {
    std::string what = "allocated " + std::to_string(now) + " " + std::to_string(batch);
    for (auto& [node, parts] : inputs)
      for (auto& p : parts)
        what += " " + std::to_string(node) + ":" + (p.is_file ? p.file : p.block.id);
    return write(std::move(what));
  }

  caf::error batch_cleaned(time_ms now, time_ms batch) override {
    return write("cleaned " + std::to_string(now) + " " + std::to_string(batch));
  }
};

std::shared_ptr<driver_log> open_log(const temp_dir& dir, time_ms rolling = 60000) {
  auto log = driver_log::open(dir.path(), rolling);
  REQUIRE(log);
  return *log;
}

} // namespace

TEST_CASE("a block added twice is logged and counted once",
          "[received_block_tracker]") {
  temp_dir dir{"sluice-rbt"};
  {
    received_block_tracker t{open_log(dir)};
    auto first = t.add(100, 0, block("a"));
    REQUIRE(first);
    CHECK(*first);
    // Its receiver re-sends it (a driver restart lost the ack).
    auto again = t.add(200, 0, block("a"));
    REQUIRE(again);
    CHECK(!*again);
    REQUIRE(t.unallocated().at(0).size() == 1);
    CHECK(t.known() == std::set<std::string>{"a"});
  }
  auto replayed = replay_driver_log(dir.path());
  REQUIRE(replayed);
  CHECK(replayed->records == 1);
}

TEST_CASE("an allocation takes every unallocated block of every stream and logs "
          "the batch before it applies",
          "[received_block_tracker]") {
  auto log = std::make_shared<recording_log>();
  received_block_tracker t{log};
  REQUIRE(t.add(100, 0, block("a")));
  REQUIRE(t.add(150, 1, block("b")));
  REQUIRE(t.add(180, 0, block("c")));
  size_t unallocated_while_logging = 0;
  log->on_write = [&] {
    for (auto& [stream, refs] : t.unallocated())
      unallocated_while_logging += refs.size();
  };
  auto taken = t.allocate(1000, 1000, driver_inputs(1000));
  REQUIRE(taken);
  // Nothing was applied while the record was being written.
  CHECK(unallocated_while_logging == 3);
  REQUIRE(log->records.size() == 4);
  // One record: the blocks and the generator's other inputs.
  CHECK(log->records.back()
        == "allocated 1000 1000 0:a 0:c 1:b 2:/in/f1000 3:q/3/1000");
  REQUIRE(taken->size() == 2);
  CHECK(taken->at(0).size() == 2);
  CHECK(taken->at(1).size() == 1);
  CHECK(t.unallocated().at(0).empty());
  CHECK(t.unallocated().at(1).empty());
  auto& inputs = t.allocations().at(1000);
  CHECK(inputs.at(dir_node).at(0).file == "/in/f1000");
  CHECK(inputs.at(0).at(1).block.id == "c");
  // Only received blocks are located; a queued batch is the driver's.
  CHECK(t.blocks().size() == 3);
  CHECK(!t.find("q/3/1000"));
  // A batch is allocated once.
  CHECK(!t.allocate(1001, 1000, {}));
}

TEST_CASE("a failed log write applies nothing and the block stays unallocated",
          "[received_block_tracker]") {
  temp_dir dir{"sluice-rbt"};
  // Segments of one second: the allocation at 5000 ms needs a new one,
  // which cannot be created once the log's directory is gone.
  received_block_tracker t{open_log(dir, 1000)};
  REQUIRE(t.add(100, 0, block("a")));
  std::filesystem::remove_all(driver_log::dir_of(dir.path()));
  auto taken = t.allocate(5000, 5000, driver_inputs(5000));
  REQUIRE(!taken);
  CHECK_THAT(describe(taken.error()), Catch::StartsWith("io_failed"));
  REQUIRE(t.unallocated().at(0).size() == 1);
  CHECK(t.unallocated().at(0)[0].id == "a");
  CHECK(t.allocations().empty());
  CHECK(t.find("a"));
  CHECK(!t.find("a")->batch);
}

TEST_CASE("an add or a release the log refuses changes nothing and succeeds once "
          "the log takes it",
          "[received_block_tracker]") {
  auto log = std::make_shared<recording_log>();
  received_block_tracker t{log};
  log->fail = true;
  CHECK(!t.add(100, 0, block("a")));
  CHECK(t.known().empty());
  log->fail = false;
  // The receiver did not get an ack and sends the block again.
  auto added = t.add(200, 0, block("a"));
  REQUIRE(added);
  CHECK(*added);
  REQUIRE(t.allocate(1000, 1000, {}));
  log->fail = true;
  CHECK(!t.release(2000, 1000));
  CHECK(t.allocations().count(1000) == 1);
  CHECK(t.known().count("a") == 1);
  log->fail = false;
  auto drops = t.release(3000, 1000);
  REQUIRE(drops);
  CHECK(drops->at("w1") == std::vector<std::string>{"a"});
  CHECK(log->records.back() == "cleaned 3000 1000");
}

TEST_CASE("a release returns what to drop per node and forgets the ids",
          "[received_block_tracker]") {
  auto log = std::make_shared<recording_log>();
  received_block_tracker t{log};
  REQUIRE(t.add(100, 0, block("a", {"w1", "w2"})));
  REQUIRE(t.add(200, 1, block("b", {"w2"})));
  REQUIRE(t.allocate(1000, 1000, driver_inputs(1000)));
  REQUIRE(t.add(1100, 0, block("c", {"w1"})));
  auto drops = t.release(2000, 1000);
  REQUIRE(drops);
  // The queued batch (location "driver") is the generator's to erase.
  CHECK(*drops
        == received_block_tracker::drops{{"w1", {"a"}}, {"w2", {"a", "b"}}});
  CHECK(t.allocations().empty());
  CHECK(t.known() == std::set<std::string>{"c"});
  // Released twice (a retry): nothing more to drop, nothing logged.
  auto records = log->records.size();
  auto again = t.release(2100, 1000);
  REQUIRE(again);
  CHECK(again->empty());
  CHECK(log->records.size() == records);
}

TEST_CASE("a lost node's copies are forgotten and blocks with no copy left are "
          "reported",
          "[received_block_tracker]") {
  received_block_tracker t;
  REQUIRE(t.add(100, 0, block("a", {"w1", "w2"})));
  REQUIRE(t.add(200, 0, block("b", {"w1"})));
  REQUIRE(t.allocate(1000, 1000, {}));
  REQUIRE(t.add(1100, 0, block("c", {"w1"})));
  REQUIRE(t.add(1200, 0, block("d", {"w2"})));
  auto lost = t.forget_node("w1");
  // Unallocated blocks first, then by batch.
  CHECK(lost == std::vector<std::string>{"c", "b"});
  CHECK(t.find("a")->ref->locations == std::vector<std::string>{"w2"});
  CHECK(t.find("d")->ref->locations == std::vector<std::string>{"w2"});
  // A new copy of b (re-replication) is found with its batch.
  auto b = t.add_locations("b", {"w3"});
  REQUIRE(b);
  CHECK(b->added);
  CHECK(b->batch == time_ms{1000});
  CHECK(b->ref->locations == std::vector<std::string>{"w3"});
  // Twice the same copy is one location; a re-sent AddBlock may name both.
  auto again = t.add_locations("b", {"w3", "w4"});
  REQUIRE(again);
  CHECK(again->added);
  CHECK(t.find("b")->ref->locations == std::vector<std::string>{"w3", "w4"});
  auto known = t.add_locations("b", {"w4"});
  REQUIRE(known);
  CHECK(!known->added);
  REQUIRE(t.release(2000, 1000));
  auto gone = t.add_locations("b", {"w5"});
  REQUIRE(!gone);
  CHECK_THAT(describe(gone.error()), Catch::StartsWith("not_found"));
}

TEST_CASE("a replayed driver log yields the state the live path built",
          "[received_block_tracker]") {
  temp_dir dir{"sluice-rbt"};
  std::string live;
  {
    received_block_tracker t{open_log(dir)};
    t.add_stream(0);
    t.add_stream(1);
    REQUIRE(t.add(100, 0, block("a", {"w1", "w2"})));
    REQUIRE(t.add(200, 1, block("b", {"w2"})));
    REQUIRE(t.add(300, 0, block("a", {"w1", "w2"}))); // re-sent
    REQUIRE(t.allocate(1000, 1000, driver_inputs(1000)));
    REQUIRE(t.add(1100, 0, block("c")));
    REQUIRE(t.allocate(2000, 2000, driver_inputs(2000)));
    REQUIRE(t.add(2100, 1, block("d")));
    REQUIRE(t.release(2500, 1000));
    REQUIRE(t.allocate(3000, 3000, {}));
    REQUIRE(t.add(3100, 0, block("e")));
    live = render(t);
  }
  auto replayed = replay_driver_log(dir.path());
  REQUIRE(replayed);
  CHECK(replayed->records == 9);
  CHECK(render(replayed->tracker) == live);
  // A restarted driver goes on from it: re-sent blocks count once, and a
  // replayed batch is released as a live one would be.
  auto log = std::make_shared<recording_log>();
  received_block_tracker resumed{log, replayed->tracker};
  auto again = resumed.add(4000, 0, block("e"));
  REQUIRE(again);
  CHECK(!*again);
  auto drops = resumed.release(4100, 2000);
  REQUIRE(drops);
  CHECK(*drops == received_block_tracker::drops{{"w1", {"c"}}});
  CHECK(log->records == std::vector<std::string>{"cleaned 4100 2000"});
}

TEST_CASE("drops for a restarting BlockManager are held and sent after its refresh",
          "[received_block_tracker]") {
  received_block_tracker t;
  REQUIRE(t.add(100, 0, block("a", {"w1", "w2"})));
  REQUIRE(t.add(200, 0, block("b", {"w2", "w3"})));
  REQUIRE(t.allocate(1000, 1000, {}));
  held_drops<std::vector<std::string>> held;
  // w2's BlockManager ended; w3 ended too, and was then lost.
  held.restarting("w2");
  held.restarting("w3");
  auto drops = t.release(2000, 1000);
  REQUIRE(drops);
  std::map<std::string, std::vector<std::string>> sent;
  for (auto& [node, ids] : *drops)
    if (!held.hold(node, ids))
      sent[node] = ids;
  CHECK(sent == std::map<std::string, std::vector<std::string>>{{"w1", {"a"}}});
  CHECK(held.held("w2") == 1);
  held.forget("w3");
  CHECK(held.refreshed("w3").empty());
  // w2 announced its next BlockManager: it gets what was held, once.
  auto after = held.refreshed("w2");
  REQUIRE(after.size() == 1);
  CHECK(after[0] == std::vector<std::string>{"a", "b"});
  CHECK(!held.is_restarting("w2"));
  CHECK(held.refreshed("w2").empty());
  std::vector<std::string> late{"c"};
  CHECK(!held.hold("w2", late));
}
