#include <catch2/catch.hpp>

#include <chrono>

#include "runtime/exec/placement.hpp"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

using kind = placement_decision::kind;
using time_point = placement_task::time_point;

const time_point t0 = time_point{} + 1h;

placement_task task(std::map<std::string, uint64_t> bytes,
                    std::string avoid = "") {
  placement_task t;
  t.input_bytes = std::move(bytes);
  t.avoid = std::move(avoid);
  t.pending_since = t0;
  return t;
}

block_ref ref(std::string id, uint64_t bytes, std::vector<std::string> locations) {
  block_ref r;
  r.id = std::move(id);
  r.bytes = bytes;
  r.locations = std::move(locations);
  return r;
}

} // namespace

TEST_CASE("a task runs on a free node holding its input", "[placement]") {
  std::map<std::string, executor_load> execs{{"a", {2, 0}}, {"b", {2, 1}}};
  auto d = place_task(task({{"b", 100}}), execs, t0, 100ms);
  CHECK(d.what == kind::run);
  CHECK(d.node == "b");
}

TEST_CASE("among free preferred nodes the one holding the most bytes wins",
          "[placement]") {
  std::map<std::string, executor_load> execs{
    {"a", {2, 0}}, {"b", {2, 1}}, {"c", {2, 0}}};
  auto d = place_task(task({{"a", 10}, {"b", 500}, {"c", 20}}), execs, t0, 100ms);
  CHECK(d.node == "b");
  // Equal bytes: the less busy one.
  d = place_task(task({{"a", 10}, {"b", 10}}), execs, t0, 100ms);
  CHECK(d.node == "a");
}

TEST_CASE("a task whose preferred nodes are busy waits for the locality wait",
          "[placement]") {
  std::map<std::string, executor_load> execs{{"a", {1, 1}}, {"b", {2, 0}}};
  auto t = task({{"a", 100}});
  auto d = place_task(t, execs, t0 + 40ms, 100ms);
  CHECK(d.what == kind::wait);
  CHECK(d.until == t0 + 100ms);
}

TEST_CASE("a task that waited the locality wait runs on any free executor",
          "[placement]") {
  std::map<std::string, executor_load> execs{{"a", {1, 1}}, {"b", {2, 0}}};
  auto d = place_task(task({{"a", 100}}), execs, t0 + 100ms, 100ms);
  CHECK(d.what == kind::run);
  CHECK(d.node == "b");
}

TEST_CASE("a locality wait of zero never waits", "[placement]") {
  std::map<std::string, executor_load> execs{{"a", {1, 1}}, {"b", {2, 0}}};
  auto d = place_task(task({{"a", 100}}), execs, t0, 0ms);
  CHECK(d.what == kind::run);
  CHECK(d.node == "b");
}

TEST_CASE("a task without a live preferred node runs anywhere at once",
          "[placement]") {
  std::map<std::string, executor_load> execs{{"a", {2, 1}}, {"b", {2, 0}}};
  // Its input lives on the driver and on a lost node: neither has an executor.
  auto d = place_task(task({{"driver", 100}, {"gone", 100}}), execs, t0, 100ms);
  CHECK(d.what == kind::run);
  CHECK(d.node == "b"); // the least busy
  d = place_task(task({}), execs, t0, 100ms);
  CHECK(d.what == kind::run);
  CHECK(d.node == "b");
}

TEST_CASE("a retried task avoids the node it failed on", "[placement]") {
  std::map<std::string, executor_load> execs{{"a", {2, 0}}, {"b", {2, 1}}};
  // Its input is on a, where it failed: it neither runs nor waits there.
  auto d = place_task(task({{"a", 100}}, "a"), execs, t0, 100ms);
  CHECK(d.what == kind::run);
  CHECK(d.node == "b");
  // Without input anywhere, the failed node is still the last choice.
  d = place_task(task({}, "a"), execs, t0, 100ms);
  CHECK(d.node == "b");
}

TEST_CASE("a retried task runs on the node it failed on when no other is free",
          "[placement]") {
  std::map<std::string, executor_load> execs{{"a", {2, 0}}, {"b", {1, 1}}};
  auto d = place_task(task({}, "a"), execs, t0, 100ms);
  CHECK(d.what == kind::run);
  CHECK(d.node == "a");
}

TEST_CASE("with every slot busy nothing is placed", "[placement]") {
  std::map<std::string, executor_load> execs{{"a", {1, 1}}, {"b", {2, 2}}};
  CHECK(place_task(task({{"a", 1}}), execs, t0, 100ms).what == kind::no_slot);
  CHECK(place_task(task({}), execs, t0 + 1s, 100ms).what == kind::no_slot);
  CHECK(place_task(task({}), {}, t0, 100ms).what == kind::no_slot);
}

TEST_CASE("input bytes count every copy of blocks and shuffle inputs",
          "[placement]") {
  leaf_read block;
  block.source = leaf_read::kind::block;
  block.block = ref("in/1", 100, {"a", "b"});
  leaf_read shuffle;
  shuffle.source = leaf_read::kind::shuffle;
  shuffle.shuffle = {ref("s/1", 30, {"b"}), ref("s/2", 50, {"c"}),
                     ref("s/3", 0, {"d"})};
  leaf_read file;
  file.source = leaf_read::kind::file;
  file.file = "/in/f";
  auto bytes = input_bytes_by_node({block, shuffle, file});
  CHECK(bytes == std::map<std::string, uint64_t>{
                   {"a", 100}, {"b", 130}, {"c", 50}, {"d", 0}});
}

TEST_CASE("ties go to the executor given the fewest tasks so far", "[placement]") {
  // All idle: the newcomer (nothing launched yet) takes the task, whatever
  // its name.
  std::map<std::string, executor_load> execs{
    {"a", {2, 0, 40}}, {"b", {2, 0, 35}}, {"z-new", {2, 0, 0}}};
  auto d = place_task(task({}), execs, t0, 100ms);
  CHECK(d.node == "z-new");
  // Busy counts first.
  execs["z-new"].busy = 1;
  d = place_task(task({}), execs, t0, 100ms);
  CHECK(d.node == "b");
  // And among preferred nodes with equal bytes and load too.
  d = place_task(task({{"a", 5}, {"b", 5}}), execs, t0, 100ms);
  CHECK(d.node == "b");
}
