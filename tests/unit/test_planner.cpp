#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>

#include "runtime/config.hpp"
#include "runtime/exec/planner.hpp"
#include "runtime/streaming_context.hpp"
#include "tests/support/local_harness.hpp"

using namespace sluice;

namespace {

using word_count = std::pair<std::string, int64_t>;

/// A context that is never started: only its graph is used.
struct planner_fixture {
  config cfg;
  caf::actor_system sys{cfg};
  streaming_context ssc{sys, cfg.sluice_settings};

  const graph& g() {
    return ssc.graph();
  }
};

auto to_pair = [](std::string s) { return word_count{std::move(s), 1}; };
auto add = [](int64_t a, int64_t b) { return a + b; };

input_partition block_input(uint32_t node, uint32_t p) {
  input_partition in;
  in.block.id = "in/" + std::to_string(node) + "/" + std::to_string(p);
  in.block.records = 10 + p;
  in.block.bytes = 100 + p;
  in.block.locations = {"w" + std::to_string(p % 2)};
  in.records = 10 + p;
  return in;
}

std::vector<input_partition> blocks(uint32_t node, uint32_t n) {
  std::vector<input_partition> result;
  for (uint32_t p = 0; p < n; ++p)
    result.push_back(block_input(node, p));
  return result;
}

shuffle_output map_out(uint32_t bucket, std::string id, uint64_t records = 1) {
  shuffle_output o;
  o.bucket = bucket;
  o.id = std::move(id);
  o.records = records;
  o.bytes = records * 8;
  return o;
}

std::vector<std::string> ids_of(const std::vector<block_ref>& refs) {
  std::vector<std::string> result;
  for (auto& r : refs)
    result.push_back(r.id);
  return result;
}

/// Every stage's parents come before it and ids match positions.
void check_topological(const std::vector<stage_plan>& stages) {
  for (size_t i = 0; i < stages.size(); ++i) {
    CHECK(stages[i].id == i);
    for (auto p : stages[i].parents)
      CHECK(p < i);
  }
}

} // namespace

TEST_CASE("inputs without partitions in a batch count zero", "[planner]") {
  planner_fixture f;
  auto q = f.ssc.queue_stream<std::string>();
  auto out = q.map([](std::string s) { return s + "!"; }).print();
  auto counts = count_partitions(f.g(), {});
  CHECK(counts.at(q.node()->index()) == 0);
  CHECK(counts.at(out.node()->index()) == 0);
}

TEST_CASE("narrow nodes and outputs have the partitions of their parent",
          "[planner]") {
  planner_fixture f;
  auto q = f.ssc.queue_stream<std::string>();
  auto m = q.map([](std::string s) { return s.size(); });
  auto fl = m.filter([](size_t n) { return n > 1; });
  auto out = fl.print();
  auto counts = count_partitions(f.g(), {{q.node()->index(), blocks(0, 6)}});
  CHECK(counts.at(q.node()->index()) == 6);
  CHECK(counts.at(m.node()->index()) == 6);
  CHECK(counts.at(fl.node()->index()) == 6);
  CHECK(counts.at(out.node()->index()) == 6);
  CHECK(counts.all().size() == f.g().size());
}

TEST_CASE("a union has the sum of its parents partitions", "[planner]") {
  planner_fixture f;
  auto a = f.ssc.queue_stream<std::string>();
  auto b = f.ssc.queue_stream<std::string>();
  auto c = f.ssc.text_file_stream("/nonexistent/in");
  auto u = f.ssc.union_of<std::string>({a, b, c});
  auto u2 = u.union_with(a);
  u2.print();
  batch_inputs inputs{{a.node()->index(), blocks(0, 2)},
                      {b.node()->index(), blocks(1, 3)}};
  // c has no entry: no files this batch.
  auto counts = count_partitions(f.g(), inputs);
  CHECK(counts.at(c.node()->index()) == 0);
  CHECK(counts.at(u.node()->index()) == 5);
  CHECK(counts.at(u2.node()->index()) == 7);
}

TEST_CASE("a shuffle has as many partitions as buckets whatever its parent has",
          "[planner]") {
  planner_fixture f;
  auto q = f.ssc.queue_stream<std::string>();
  auto r = q.map(to_pair).reduce_by_key(add, 3);
  auto rep = r.repartition(11);
  auto dflt = q.map(to_pair).reduce_by_key(add); // default parallelism
  rep.print();
  dflt.print();
  for (uint32_t n : {0u, 1u, 7u}) {
    auto counts = count_partitions(f.g(), {{q.node()->index(), blocks(0, n)}});
    CHECK(counts.at(r.node()->index()) == 3);
    CHECK(counts.at(rep.node()->index()) == 11);
    CHECK(counts.at(dflt.node()->index()) == f.cfg.sluice_settings.default_parallelism);
  }
}

TEST_CASE("a narrow chain is planned as one output stage", "[planner]") {
  planner_fixture f;
  auto q = f.ssc.queue_stream<std::string>();
  auto out = q.map([](std::string s) { return s + s; })
               .filter([](const std::string& s) { return !s.empty(); })
               .flat_map([](std::string s) { return std::vector<std::string>{s, s}; })
               .print();
  auto stages = plan_job(f.g(), *out.node());
  REQUIRE(stages.size() == 1);
  CHECK(stages[0].id == 0);
  CHECK(stages[0].final_node == out.node()->index());
  CHECK(stages[0].action == task_action::output);
  CHECK(stages[0].target == out.node()->index());
  CHECK(stages[0].parents.empty());
}

TEST_CASE("reduce_by_key is planned as a map stage that writes the shuffle and "
          "an output stage",
          "[planner]") {
  planner_fixture f;
  auto q = f.ssc.queue_stream<std::string>();
  auto pairs = q.map(to_pair);
  auto r = pairs.reduce_by_key(add, 3);
  auto out = r.print();
  auto stages = plan_job(f.g(), *out.node());
  REQUIRE(stages.size() == 2);
  check_topological(stages);
  CHECK(stages[0].final_node == pairs.node()->index());
  CHECK(stages[0].action == task_action::shuffle_write);
  CHECK(stages[0].target == r.node()->index());
  CHECK(stages[0].parents.empty());
  CHECK(stages[1].final_node == out.node()->index());
  CHECK(stages[1].action == task_action::output);
  CHECK(stages[1].target == out.node()->index());
  CHECK(stages[1].parents == std::vector<uint32_t>{0});
}

TEST_CASE("two shuffles in a row are planned as a chain of stages", "[planner]") {
  planner_fixture f;
  auto q = f.ssc.queue_stream<std::string>();
  auto pairs = q.map(to_pair);
  auto r = pairs.reduce_by_key(add, 2);
  auto rep = r.repartition(5);
  auto out = rep.print();
  auto stages = plan_job(f.g(), *out.node());
  REQUIRE(stages.size() == 3);
  check_topological(stages);
  CHECK(stages[0].final_node == pairs.node()->index());
  CHECK(stages[0].target == r.node()->index());
  CHECK(stages[0].parents.empty());
  // The second map stage computes the reduce side of the first shuffle.
  CHECK(stages[1].final_node == r.node()->index());
  CHECK(stages[1].action == task_action::shuffle_write);
  CHECK(stages[1].target == rep.node()->index());
  CHECK(stages[1].parents == std::vector<uint32_t>{0});
  CHECK(stages[2].final_node == out.node()->index());
  CHECK(stages[2].parents == std::vector<uint32_t>{1});
}

TEST_CASE("two branches that reduce and then union plan each shuffle once",
          "[planner]") {
  planner_fixture f;
  auto q = f.ssc.queue_stream<std::string>();
  auto pairs = q.map(to_pair);
  auto left = pairs.reduce_by_key(add, 2);
  auto filtered = pairs.filter([](const word_count& x) { return x.first.size() > 3; });
  auto right = filtered.reduce_by_key(add, 3);
  auto u = left.union_with(right);
  auto out = u.print();
  auto stages = plan_job(f.g(), *out.node());
  REQUIRE(stages.size() == 3);
  check_topological(stages);
  std::vector<uint32_t> targets{stages[0].target, stages[1].target};
  std::sort(targets.begin(), targets.end());
  CHECK(targets == std::vector<uint32_t>{left.node()->index(), right.node()->index()});
  for (int i = 0; i < 2; ++i) {
    CHECK(stages[i].action == task_action::shuffle_write);
    CHECK(stages[i].parents.empty());
    if (stages[i].target == left.node()->index())
      CHECK(stages[i].final_node == pairs.node()->index());
    else
      CHECK(stages[i].final_node == filtered.node()->index());
  }
  auto parents = stages[2].parents;
  std::sort(parents.begin(), parents.end());
  CHECK(parents == std::vector<uint32_t>{0, 1});
  CHECK(stages[2].action == task_action::output);
  // Union partitions: 2 + 3 buckets whatever the input had.
  auto counts = count_partitions(f.g(), {{q.node()->index(), blocks(0, 4)}});
  CHECK(counts.at(u.node()->index()) == 5);
  CHECK(counts.at(out.node()->index()) == 5);
}

TEST_CASE("a shuffle reached through both sides of a diamond is planned once",
          "[planner]") {
  planner_fixture f;
  auto q = f.ssc.queue_stream<std::string>();
  auto pairs = q.map(to_pair);
  auto r = pairs.reduce_by_key(add, 2);
  auto a = r.map([](word_count x) { return x; });
  auto b = r.filter([](const word_count& x) { return x.second > 1; });
  auto out = a.union_with(b).print();
  auto stages = plan_job(f.g(), *out.node());
  REQUIRE(stages.size() == 2);
  check_topological(stages);
  CHECK(stages[0].target == r.node()->index());
  CHECK(stages[1].parents == std::vector<uint32_t>{0});
}

TEST_CASE("a shuffle shared by two later shuffles is planned once", "[planner]") {
  planner_fixture f;
  auto q = f.ssc.queue_stream<std::string>();
  auto pairs = q.map(to_pair);
  auto r = pairs.reduce_by_key(add, 2);
  auto again = r.reduce_by_key(add, 4);
  auto other = r.map([](word_count x) { return x; }).reduce_by_key(add, 3);
  auto out = again.union_with(other).print();
  auto stages = plan_job(f.g(), *out.node());
  REQUIRE(stages.size() == 4);
  check_topological(stages);
  size_t writes_r = 0;
  for (auto& st : stages) {
    if (st.action == task_action::shuffle_write && st.target == r.node()->index()) {
      ++writes_r;
      CHECK(st.parents.empty());
    }
  }
  CHECK(writes_r == 1);
  CHECK(stages[0].target == r.node()->index());
  CHECK(stages[0].final_node == pairs.node()->index());
  for (uint32_t i = 1; i < 3; ++i) {
    CHECK(stages[i].action == task_action::shuffle_write);
    CHECK(stages[i].parents == std::vector<uint32_t>{0});
  }
  auto parents = stages[3].parents;
  std::sort(parents.begin(), parents.end());
  CHECK(parents == std::vector<uint32_t>{1, 2});
}

TEST_CASE("count is planned as map_partitions then repartition to one then "
          "map_partitions",
          "[planner]") {
  planner_fixture f;
  auto q = f.ssc.queue_stream<std::string>();
  auto c = q.count();
  auto out = c.print();
  auto& g = f.g();
  REQUIRE(g.size() == 5);
  CHECK(g.at(1)->op() == "map_partitions");
  CHECK(g.at(1)->kind() == node_kind::narrow);
  CHECK(g.at(2)->op() == "repartition");
  CHECK(g.at(2)->kind() == node_kind::shuffle);
  CHECK(g.at(3)->op() == "map_partitions");
  CHECK(c.node()->index() == 3);
  auto stages = plan_job(g, *out.node());
  REQUIRE(stages.size() == 2);
  CHECK(stages[0].final_node == 1);
  CHECK(stages[0].action == task_action::shuffle_write);
  CHECK(stages[0].target == 2);
  CHECK(stages[1].final_node == out.node()->index());
  CHECK(stages[1].parents == std::vector<uint32_t>{0});
  auto counts = count_partitions(g, {{0, blocks(0, 6)}});
  CHECK(counts.at(1) == 6);
  CHECK(counts.at(2) == 1);
  CHECK(counts.at(3) == 1);
  CHECK(counts.at(out.node()->index()) == 1);
}

TEST_CASE("reads of a union partition go to the right parent and partition",
          "[planner]") {
  planner_fixture f;
  auto a = f.ssc.queue_stream<std::string>();
  auto b = f.ssc.queue_stream<std::string>();
  auto out = a.union_with(b).map([](std::string s) { return s; }).print();
  batch_inputs inputs{{a.node()->index(), blocks(a.node()->index(), 2)},
                      {b.node()->index(), blocks(b.node()->index(), 3)}};
  auto counts = count_partitions(f.g(), inputs);
  REQUIRE(counts.at(out.node()->index()) == 5);
  map_output_registry none;
  std::vector<std::pair<uint32_t, uint32_t>> expected{
    {a.node()->index(), 0}, {a.node()->index(), 1}, {b.node()->index(), 0},
    {b.node()->index(), 1}, {b.node()->index(), 2}};
  for (uint32_t p = 0; p < 5; ++p) {
    INFO("partition " << p);
    auto reads = plan_reads(f.g(), counts, inputs, none, out.node()->index(), p);
    REQUIRE(reads.size() == 1);
    CHECK(reads[0].node == expected[p].first);
    CHECK(reads[0].partition == expected[p].second);
    CHECK(reads[0].source == leaf_read::kind::block);
    auto& in = inputs[expected[p].first][expected[p].second];
    CHECK(reads[0].block.id == in.block.id);
    CHECK(reads[0].block.records == in.block.records);
    CHECK(reads[0].block.locations == in.block.locations);
  }
  // Partition 3 in particular: the second parent's partition 1.
  auto reads = plan_reads(f.g(), counts, inputs, none, out.node()->index(), 3);
  REQUIRE(reads.size() == 1);
  CHECK(reads[0].block.id == "in/1/1");
  CHECK_THROWS_AS(plan_reads(f.g(), counts, inputs, none, out.node()->index(), 5),
                  std::out_of_range);
}

TEST_CASE("reads of a union skip a parent without partitions", "[planner]") {
  planner_fixture f;
  auto a = f.ssc.queue_stream<std::string>();
  auto b = f.ssc.queue_stream<std::string>();
  auto c = f.ssc.queue_stream<std::string>();
  auto out = f.ssc.union_of<std::string>({a, b, c}).print();
  batch_inputs inputs{{a.node()->index(), blocks(0, 1)},
                      {c.node()->index(), blocks(2, 2)}};
  auto counts = count_partitions(f.g(), inputs);
  REQUIRE(counts.at(out.node()->index()) == 3);
  map_output_registry none;
  auto reads = plan_reads(f.g(), counts, inputs, none, out.node()->index(), 1);
  REQUIRE(reads.size() == 1);
  CHECK(reads[0].node == c.node()->index());
  CHECK(reads[0].partition == 0);
}

TEST_CASE("reads of a directory stream name the file", "[planner]") {
  planner_fixture f;
  auto d = f.ssc.text_file_stream("/nonexistent/dir");
  auto out = d.print();
  input_partition f0;
  f0.is_file = true;
  f0.file = "/nonexistent/dir/a.txt";
  input_partition f1 = f0;
  f1.file = "/nonexistent/dir/b.txt";
  batch_inputs inputs{{d.node()->index(), {f0, f1}}};
  auto counts = count_partitions(f.g(), inputs);
  map_output_registry none;
  auto reads = plan_reads(f.g(), counts, inputs, none, out.node()->index(), 1);
  REQUIRE(reads.size() == 1);
  CHECK(reads[0].source == leaf_read::kind::file);
  CHECK(reads[0].file == "/nonexistent/dir/b.txt");
  CHECK(reads[0].node == d.node()->index());
  CHECK(reads[0].partition == 1);
}

TEST_CASE("planning reads of a missing input or node is a logic error",
          "[planner]") {
  planner_fixture f;
  auto q = f.ssc.queue_stream<std::string>();
  auto out = q.print();
  batch_inputs inputs{{q.node()->index(), blocks(0, 2)}};
  auto counts = count_partitions(f.g(), inputs);
  map_output_registry none;
  CHECK_THROWS_AS(plan_reads(f.g(), counts, {}, none, out.node()->index(), 0),
                  std::logic_error);
  CHECK_THROWS_AS(plan_reads(f.g(), counts, inputs, none, out.node()->index(), 2),
                  std::logic_error);
  CHECK_THROWS_AS(plan_reads(f.g(), counts, inputs, none, 999, 0), std::logic_error);
}

TEST_CASE("shuffle reads list the bucket's blocks in map partition order",
          "[planner]") {
  planner_fixture f;
  auto q = f.ssc.queue_stream<std::string>();
  auto r = q.map(to_pair).reduce_by_key(add, 3);
  auto out = r.map([](word_count x) { return x; }).print();
  auto s = r.node()->index();
  batch_inputs inputs{{q.node()->index(), blocks(0, 3)}};
  auto counts = count_partitions(f.g(), inputs);
  map_output_registry reg;
  // Reported out of order, as tasks finish.
  reg.add(s, 0, 2, {map_out(0, "m2b0"), map_out(1, "m2b1", 5)}, "w2");
  reg.add(s, 0, 0, {map_out(1, "m0b1", 3), map_out(2, "m0b2")}, "w0");
  reg.add(s, 0, 1, {map_out(0, "m1b0")}, "w1"); // nothing for bucket 1
  auto reads = plan_reads(f.g(), counts, inputs, reg, out.node()->index(), 1);
  REQUIRE(reads.size() == 1);
  CHECK(reads[0].node == s);
  CHECK(reads[0].partition == 1);
  CHECK(reads[0].source == leaf_read::kind::shuffle);
  REQUIRE(reads[0].shuffle.size() == 2);
  CHECK(ids_of(reads[0].shuffle) == std::vector<std::string>{"m0b1", "m2b1"});
  CHECK(reads[0].shuffle[0].records == 3);
  CHECK(reads[0].shuffle[0].bytes == 24);
  CHECK(reads[0].shuffle[0].locations == std::vector<std::string>{"w0"});
  CHECK(reads[0].shuffle[1].records == 5);
  CHECK(reads[0].shuffle[1].locations == std::vector<std::string>{"w2"});
  auto b0 = plan_reads(f.g(), counts, inputs, reg, out.node()->index(), 0);
  REQUIRE(b0.size() == 1);
  CHECK(ids_of(b0[0].shuffle) == std::vector<std::string>{"m1b0", "m2b0"});
  // The map stage's own tasks read the queue's blocks.
  auto m = plan_reads(f.g(), counts, inputs, reg, r.node()->parents()[0]->index(), 2);
  REQUIRE(m.size() == 1);
  CHECK(m[0].node == q.node()->index());
  CHECK(m[0].block.id == "in/0/2");
}

TEST_CASE("a map output registry tracks completion buckets and lost nodes",
          "[planner]") {
  map_output_registry reg;
  CHECK(reg.complete(7, 0, 0));
  CHECK_FALSE(reg.complete(7, 0, 1));
  CHECK(reg.bucket(7, 0, 0).empty());
  CHECK(reg.block_ids().empty());
  reg.add(7, 0, 0, {map_out(0, "7/0/0"), map_out(1, "7/0/1")}, "wa");
  reg.add(7, 0, 1, {}, "wb"); // a map task with empty output still counts
  CHECK(reg.complete(7, 0, 2));
  CHECK_FALSE(reg.complete(7, 0, 3));
  reg.add(7, 0, 2, {map_out(1, "7/2/1")}, "wb");
  reg.add(9, 0, 0, {map_out(0, "9/0/0")}, "wa");
  CHECK(reg.complete(7, 0, 3));
  CHECK(reg.complete(9, 0, 1));
  CHECK(ids_of(reg.bucket(7, 0, 1)) == std::vector<std::string>{"7/0/1", "7/2/1"});
  auto all = reg.block_ids();
  std::sort(all.begin(), all.end());
  CHECK(all == std::vector<std::string>{"7/0/0", "7/0/1", "7/2/1", "9/0/0"});
  // A re-run of a map task replaces its earlier output.
  reg.add(7, 0, 0, {map_out(1, "7/0/1-retry")}, "wc");
  CHECK(reg.complete(7, 0, 3));
  CHECK(ids_of(reg.bucket(7, 0, 1)) == std::vector<std::string>{"7/0/1-retry", "7/2/1"});
  CHECK(reg.bucket(7, 0, 0).empty());
  CHECK(reg.bucket(7, 0, 1)[0].locations == std::vector<std::string>{"wc"});
  // Losing wb loses map partitions 1 and 2 of shuffle 7 only.
  auto affected = reg.remove_node("wb");
  CHECK(affected == std::vector<uint32_t>{7});
  CHECK_FALSE(reg.complete(7, 0, 3));
  CHECK(reg.complete(7, 0, 1));
  CHECK(reg.complete(9, 0, 1));
  CHECK(ids_of(reg.bucket(7, 0, 1)) == std::vector<std::string>{"7/0/1-retry"});
  all = reg.block_ids();
  std::sort(all.begin(), all.end());
  CHECK(all == std::vector<std::string>{"7/0/1-retry", "9/0/0"});
  CHECK(reg.remove_node("nobody").empty());
  affected = reg.remove_node("wa");
  CHECK(affected == std::vector<uint32_t>{9});
  CHECK_FALSE(reg.complete(9, 0, 1));
}

TEST_CASE("a window skips cached slots that were never filled", "[planner][windows]") {
  cache_registry cache;
  sluice::test::local_harness h{1};
  auto xs = h.ssc().queue_stream<std::string>({});
  auto w = xs.window(std::chrono::seconds{2}, std::chrono::seconds{1});
  auto parent = xs.node()->index();
  cache.begin(parent, 1000, 2);
  cache.set(parent, 1000, 0, block_ref{"c/a", 1, 8, {"w1"}, {}});
  cache.begin(parent, 2000, 1);
  cache.set(parent, 2000, 0, block_ref{"c/b", 1, 8, {"w1"}, {}});
  auto sources = window_sources(*w.node(), cache, 2000);
  REQUIRE(sources.size() == 2);
  CHECK(sources[0]->id == "c/a");
  CHECK(sources[1]->id == "c/b");
  CHECK(cache.expire(parent, 1000).size() == 1);
  CHECK(window_sources(*w.node(), cache, 2000).size() == 1);
}

TEST_CASE("a cached state partition with no copy on a live node is unreadable "
          "from the newest complete batch on",
          "[unit][planner]") {
  cache_registry cache;
  auto ref = [](std::string id, std::vector<std::string> locations) {
    block_ref r;
    r.id = std::move(id);
    r.locations = std::move(locations);
    return r;
  };
  // Batch 1000: complete, partition 1 only on the lost node "b". Batch 2000:
  // complete, everything on "a". Batch 3000: being computed, partition 0
  // done on "b".
  cache.begin(7, 1000, 2);
  cache.set(7, 1000, 0, ref("x0", {"a"}));
  cache.set(7, 1000, 1, ref("x1", {"b"}));
  cache.begin(7, 2000, 2);
  cache.set(7, 2000, 0, ref("y0", {"a"}));
  cache.set(7, 2000, 1, ref("y1", {"a", "b"}));
  cache.begin(7, 3000, 2);
  cache.set(7, 3000, 0, ref("z0", {"b"}));
  cache.begin(8, 1000, 1);
  cache.set(8, 1000, 0, ref("w0", {"b"}));
  auto live = [](const std::string& node) { return node == "a"; };
  // 1000 was superseded by 2000, whose copies live; 3000's done slot died.
  CHECK(cache.unreadable(7, live)
        == std::vector<std::pair<time_ms, uint32_t>>{{3000, 0}});
  CHECK(cache.unreadable(8, live)
        == std::vector<std::pair<time_ms, uint32_t>>{{1000, 0}});
  CHECK(cache.unreadable(9, live).empty());
  auto all_live = [](const std::string&) { return true; };
  CHECK(cache.unreadable(7, all_live).empty());
}
