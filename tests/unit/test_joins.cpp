#include <catch2/catch.hpp>

#include <optional>

#include "runtime/exec/planner.hpp"
#include "tests/support/local_harness.hpp"

using namespace sluice;
using namespace sluice::test;

namespace {

using kv = std::pair<std::string, int>;
using kw = std::pair<std::string, std::string>;
using opt_i = std::optional<int>;
using opt_s = std::optional<std::string>;

} // namespace

TEST_CASE("cogroup gathers both sides of every key batch by batch", "[joins]") {
  local_harness h{2};
  auto left = h.ssc().queue_stream<kv>({{{"a", 1}, {"a", 2}, {"b", 3}}, {}, {{"c", 9}}});
  auto right = h.ssc().queue_stream<kw>({{{"a", "x"}, {"d", "y"}}, {{"e", "z"}}, {}});
  auto sink = h.collect(left.cogroup(right, 3));
  h.start();
  h.next_batch();
  using group = std::pair<std::string, std::pair<std::vector<int>, std::vector<std::string>>>;
  auto b1 = sink->sorted(1000);
  for (auto& g : b1)
    std::sort(g.second.first.begin(), g.second.first.end());
  CHECK(b1 == std::vector<group>{{"a", {{1, 2}, {"x"}}}, {"b", {{3}, {}}}, {"d", {{}, {"y"}}}});
  h.next_batch();
  CHECK(sink->sorted(2000) == std::vector<group>{{"e", {{}, {"z"}}}});
  h.next_batch();
  CHECK(sink->sorted(3000) == std::vector<group>{{"c", {{9}, {}}}});
}

TEST_CASE("join pairs every value of a key with every value of the other side and drops one-sided keys",
          "[joins]") {
  local_harness h{2};
  auto left = h.ssc().queue_stream<kv>({{{"a", 1}, {"a", 2}, {"b", 3}}, {{"k", 1}}});
  auto right = h.ssc().queue_stream<kw>({{{"a", "x"}, {"a", "y"}, {"c", "z"}}, {}});
  auto sink = h.collect(left.join(right));
  h.start();
  h.next_batch();
  using row = std::pair<std::string, std::pair<int, std::string>>;
  CHECK(sink->sorted(1000)
        == std::vector<row>{{"a", {1, "x"}}, {"a", {1, "y"}}, {"a", {2, "x"}}, {"a", {2, "y"}}});
  h.next_batch();
  CHECK(sink->sorted(2000).empty());
}

TEST_CASE("outer joins keep the keys of one side with an empty optional for the other",
          "[joins]") {
  local_harness h{2};
  auto left = h.ssc().queue_stream<kv>({{{"a", 1}, {"b", 2}}});
  auto right = h.ssc().queue_stream<kw>({{{"a", "x"}, {"c", "z"}}});
  auto lo = h.collect(left.left_outer_join(right, 2));
  auto ro = h.collect(left.right_outer_join(right, 2));
  auto fo = h.collect(left.full_outer_join(right, 2));
  h.start();
  h.next_batch();
  using l_row = std::pair<std::string, std::pair<int, opt_s>>;
  using r_row = std::pair<std::string, std::pair<opt_i, std::string>>;
  using f_row = std::pair<std::string, std::pair<opt_i, opt_s>>;
  CHECK(lo->sorted(1000) == std::vector<l_row>{{"a", {1, "x"}}, {"b", {2, std::nullopt}}});
  CHECK(ro->sorted(1000) == std::vector<r_row>{{"a", {1, "x"}}, {"c", {std::nullopt, "z"}}});
  CHECK(fo->sorted(1000)
        == std::vector<f_row>{{"a", {1, "x"}}, {"b", {2, std::nullopt}}, {"c", {std::nullopt, "z"}}});
}

TEST_CASE("a stream joined with itself sees each key on both sides", "[joins]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<kv>({{{"a", 1}, {"b", 2}, {"a", 3}}});
  auto sink = h.collect(xs.join(xs, 2));
  h.start();
  h.next_batch();
  using row = std::pair<std::string, std::pair<int, int>>;
  CHECK(sink->sorted(1000)
        == std::vector<row>{{"a", {1, 1}}, {"a", {1, 3}}, {"a", {3, 1}}, {"a", {3, 3}}, {"b", {2, 2}}});
}

TEST_CASE("a join over many keys across three workers is exact", "[joins]") {
  local_harness h{3};
  std::vector<kv> left;
  std::vector<kw> right;
  for (int i = 0; i < 600; ++i) {
    left.emplace_back("k" + std::to_string(i % 200), i);
    if (i % 3 == 0)
      right.emplace_back("k" + std::to_string(i % 200), "r" + std::to_string(i));
  }
  auto l = h.ssc().queue_stream<kv>({left});
  auto r = h.ssc().queue_stream<kw>({right});
  auto sink = h.collect(l.join(r, 5));
  h.start();
  h.next_batch();
  std::vector<std::pair<std::string, std::pair<int, std::string>>> expected;
  for (auto& [k, v] : left)
    for (auto& [k2, w] : right)
      if (k == k2)
        expected.push_back({k, {v, w}});
  std::sort(expected.begin(), expected.end());
  CHECK(sink->sorted(1000) == expected);
}

TEST_CASE("a cogroup is planned as one map stage per side before the output stage",
          "[joins][planner]") {
  local_harness h{1};
  auto left = h.ssc().queue_stream<kv>({});
  auto right = h.ssc().queue_stream<kw>({});
  auto joined = left.cogroup(right, 4);
  auto out = joined.foreach_batch([](time_ms, auto&) {});
  auto stages = plan_job(h.ssc().graph(), *out.node());
  REQUIRE(stages.size() == 3);
  CHECK(stages[0].action == task_action::shuffle_write);
  CHECK(stages[0].final_node == left.node()->index());
  CHECK(stages[0].side == 0);
  CHECK(stages[1].final_node == right.node()->index());
  CHECK(stages[1].side == 1);
  CHECK(stages[0].target == joined.node()->index());
  CHECK(stages[1].target == joined.node()->index());
  CHECK(stages[2].action == task_action::output);
  CHECK(stages[2].parents == std::vector<uint32_t>{0, 1});
}
