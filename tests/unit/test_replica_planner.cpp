#include <catch2/catch.hpp>

#include "runtime/cluster/replica_planner.hpp"

using namespace sluice;

namespace {

block_ref ref(std::string id, std::vector<std::string> locations) {
  block_ref r;
  r.id = std::move(id);
  r.locations = std::move(locations);
  return r;
}

std::vector<const block_ref*> all(const std::vector<block_ref>& xs) {
  std::vector<const block_ref*> out;
  for (auto& x : xs)
    out.push_back(&x);
  return out;
}

} // namespace

TEST_CASE("a block left with one live copy is copied from it to a live node that lacks it",
          "[unit][replication]") {
  std::vector<block_ref> blocks{ref("x", {"dead", "b"})};
  auto plan = plan_replicas(all(blocks), {"a", "b"}, 2, {});
  REQUIRE(plan.copies.size() == 1);
  CHECK(plan.copies[0].id == "x");
  CHECK(plan.copies[0].source == "b");
  CHECK(plan.copies[0].target == "a");
  CHECK(plan.degraded == 0);
  CHECK(plan.lost == 0);
}

TEST_CASE("blocks with enough live copies are left alone",
          "[unit][replication]") {
  std::vector<block_ref> blocks{ref("x", {"a", "b"}), ref("y", {"b", "c"})};
  auto plan = plan_replicas(all(blocks), {"a", "b", "c"}, 2, {});
  CHECK(plan.copies.empty());
  // One copy wanted: nothing to do even for a single copy.
  std::vector<block_ref> single{ref("z", {"a"})};
  CHECK(plan_replicas(all(single), {"a", "b"}, 1, {}).copies.empty());
}

TEST_CASE("copies are spread over the live nodes that lack the blocks",
          "[unit][replication]") {
  std::vector<block_ref> blocks;
  for (int i = 0; i < 6; ++i)
    blocks.push_back(ref("x" + std::to_string(i), {"a"}));
  auto plan = plan_replicas(all(blocks), {"a", "b", "c"}, 2, {});
  REQUIRE(plan.copies.size() == 6);
  size_t to_b = 0;
  size_t to_c = 0;
  for (auto& c : plan.copies) {
    CHECK(c.source == "a");
    to_b += c.target == "b" ? 1 : 0;
    to_c += c.target == "c" ? 1 : 0;
  }
  CHECK(to_b == 3);
  CHECK(to_c == 3);
}

TEST_CASE("with no other live node the block is counted as degraded",
          "[unit][replication]") {
  std::vector<block_ref> blocks{ref("x", {"a", "dead"}), ref("y", {"a"})};
  auto plan = plan_replicas(all(blocks), {"a"}, 2, {});
  CHECK(plan.copies.empty());
  CHECK(plan.degraded == 2);
}

TEST_CASE("a block with no live copy is counted as lost and not copied",
          "[unit][replication]") {
  std::vector<block_ref> blocks{ref("x", {"dead1", "dead2"}), ref("y", {})};
  auto plan = plan_replicas(all(blocks), {"a", "b"}, 2, {});
  CHECK(plan.copies.empty());
  CHECK(plan.lost == 2);
}

TEST_CASE("a block whose copy is already under way is not copied twice",
          "[unit][replication]") {
  std::vector<block_ref> blocks{ref("x", {"a"}), ref("y", {"a"})};
  auto plan = plan_replicas(all(blocks), {"a", "b"}, 2, {"x"});
  REQUIRE(plan.copies.size() == 1);
  CHECK(plan.copies[0].id == "y");
}
