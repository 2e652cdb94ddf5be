// Shuffling DStream operators (repartition, count, reduce, the keyed
// aggregations) and the records they carry, user types included, batch by
// batch, on a real local-mode cluster (driver + 2 in-process workers, the
// real actors and Cap'n Proto messages) driven by a manual clock:
// h.next_batch() runs exactly one batch, so each batch's output is compared
// with the exact expected records.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "apps/wordcount_graph.hpp"
#include "tests/support/local_harness.hpp"
#include "tests/unit/operator_tests.hpp"

using namespace sluice;
using namespace sluice::test;

// -- user record types ---------------------------------------------------------

namespace optest {

/// A user type with a CAF-style inspect and its own std::hash.
struct point {
  int32_t x = 0;
  int32_t y = 0;
  std::string tag;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, point& p) {
  return f(caf::meta::type_name("optest::point"), p.x, p.y, p.tag);
}

inline bool operator==(const point& a, const point& b) {
  return std::tie(a.x, a.y, a.tag) == std::tie(b.x, b.y, b.tag);
}

inline bool operator<(const point& a, const point& b) {
  return std::tie(a.x, a.y, a.tag) < std::tie(b.x, b.y, b.tag);
}

/// A user type without std::hash: keyed operators fall back to hashing its
/// encoding (sluice::key_hash).
struct cell {
  std::string sheet;
  std::vector<int32_t> coords;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cell& c) {
  return f(caf::meta::type_name("optest::cell"), c.sheet, c.coords);
}

inline bool operator==(const cell& a, const cell& b) {
  return a.sheet == b.sheet && a.coords == b.coords;
}

inline bool operator<(const cell& a, const cell& b) {
  return std::tie(a.sheet, a.coords) < std::tie(b.sheet, b.coords);
}

} // namespace optest

namespace std {

template <>
struct hash<optest::point> {
  size_t operator()(const optest::point& p) const noexcept {
    return std::hash<int32_t>{}(p.x) * 31 + std::hash<int32_t>{}(p.y) * 7
           + std::hash<std::string>{}(p.tag);
  }
};

} // namespace std

// -- shuffles --------------------------------------------------------------------

TEST_CASE("repartition keeps the multiset and fills every output partition",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  ints batch1;
  for (int64_t i = 0; i < 20; ++i)
    batch1.push_back(i % 7); // duplicates must survive
  auto xs = ssc.queue_stream<int64_t>({batch1, {42}, {}});
  auto four = collect_partitions(xs.repartition(4));
  auto one_part = collect_partitions(xs.repartition(1));
  // Several input partitions (a union) into 3.
  auto ys = ssc.queue_stream<int64_t>({{100, 101, 102}, {}, {}});
  auto mixed = collect_partitions(xs.union_with(ys).repartition(3));
  h.start();
  h.next_batch();
  auto p4 = four->at(1000);
  REQUIRE(p4.size() == 4);
  for (auto& p : p4) {
    CHECK(!p.empty());
    // Round robin: 20 records over 4 partitions is 5 each.
    CHECK(p.size() == 5);
  }
  CHECK(flatten_sorted(p4) == sorted(batch1));
  auto p1 = one_part->at(1000);
  REQUIRE(p1.size() == 1);
  CHECK(sorted(p1[0]) == sorted(batch1));
  auto p3 = mixed->at(1000);
  REQUIRE(p3.size() == 3);
  for (auto& p : p3)
    CHECK(!p.empty());
  auto expected = batch1;
  expected.insert(expected.end(), {100, 101, 102});
  CHECK(flatten_sorted(p3) == sorted(expected));
  h.next_batch();
  p4 = four->at(2000);
  REQUIRE(p4.size() == 4);
  CHECK(flatten_sorted(p4) == ints{42});
  CHECK(std::count_if(p4.begin(), p4.end(), [](auto& p) { return p.empty(); }) == 3);
  h.next_batch();
  // An empty batch still has the configured partitions, all empty.
  p4 = four->at(3000);
  REQUIRE(p4.size() == 4);
  CHECK(flatten_sorted(p4).empty());
}

TEST_CASE("count emits one record per batch and 0 for an empty batch",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto xs = ssc.queue_stream<std::string>({{"a", "b", "c"}, {}, {"x", "y", "z", "w", "v"}});
  auto n = h.collect(xs.count());
  auto ys = ssc.queue_stream<int64_t>({{1}, {2, 3}, {}});
  auto n_union = h.collect(xs.map([](std::string s) { return static_cast<int64_t>(s.size()); })
                             .union_with(ys)
                             .count());
  h.start();
  h.next_batch();
  CHECK(n->sorted(1000) == ints{3});
  CHECK(n_union->sorted(1000) == ints{4});
  h.next_batch();
  CHECK(n->sorted(2000) == ints{0}); // a queued empty batch
  CHECK(n_union->sorted(2000) == ints{2});
  h.next_batch();
  CHECK(n->sorted(3000) == ints{5});
  CHECK(n_union->sorted(3000) == ints{5});
  h.next_batch();
  CHECK(n->sorted(4000) == ints{0}); // past the end of the queue
  CHECK(n_union->sorted(4000) == ints{0});
}

TEST_CASE("count_by_value counts every distinct record", "[operators]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<std::string>({{"a", "b", "a", "c", "a"}, {}, {"b", "b"}});
  auto by_default = h.collect(xs.count_by_value());
  auto three = collect_partitions(xs.count_by_value(3));
  h.start();
  h.next_batch();
  CHECK(by_default->sorted(1000) == counts{{"a", 3}, {"b", 1}, {"c", 1}});
  REQUIRE(three->at(1000).size() == 3);
  CHECK(flatten_sorted(three->at(1000)) == counts{{"a", 3}, {"b", 1}, {"c", 1}});
  h.next_batch();
  CHECK(by_default->sorted(2000).empty());
  CHECK(flatten_sorted(three->at(2000)).empty());
  h.next_batch();
  CHECK(by_default->sorted(3000) == counts{{"b", 2}});
}

TEST_CASE("reduce folds a batch into one record and emits nothing for an empty batch",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto xs = ssc.queue_stream<int64_t>({{1, 2, 3, 4}, {}, {-5}});
  auto ys = ssc.queue_stream<int64_t>({{100}, {}, {}});
  auto sum = h.collect(xs.reduce(add));
  auto biggest = h.collect(xs.union_with(ys).reduce(
    [](int64_t a, int64_t b) { return std::max(a, b); }));
  auto text = h.collect(xs.map([](int64_t x) { return std::to_string(x); })
                          .reduce([](std::string a, std::string b) {
                            return a.size() >= b.size() ? a : b;
                          }));
  h.start();
  h.next_batch();
  CHECK(sum->sorted(1000) == ints{10});
  CHECK(biggest->sorted(1000) == ints{100});
  CHECK(text->sorted(1000).size() == 1);
  h.next_batch();
  CHECK(sum->has(2000));
  CHECK(sum->sorted(2000).empty());
  CHECK(biggest->sorted(2000).empty());
  CHECK(text->sorted(2000).empty());
  h.next_batch();
  CHECK(sum->sorted(3000) == ints{-5});
  CHECK(text->sorted(3000) == strings{"-5"});
  h.next_batch();
  CHECK(sum->sorted(4000).empty());
}

TEST_CASE("reduce_by_key merges every key into the requested number of partitions",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto a = ssc.queue_stream<std::string>({{"x", "y", "x", "z"}, {}, {"q"}});
  auto b = ssc.queue_stream<std::string>({{"x", "z", "w"}, {"y"}, {}});
  // Two map partitions (the union), so combiners from two tasks merge.
  auto pairs = a.union_with(b).map(one);
  auto one_part = collect_partitions(pairs.reduce_by_key(add, 1));
  auto three = collect_partitions(pairs.reduce_by_key(add, 3));
  auto by_default = h.collect(pairs.reduce_by_key(add));
  h.start();
  h.next_batch();
  counts expected1{{"w", 1}, {"x", 3}, {"y", 1}, {"z", 2}};
  REQUIRE(one_part->at(1000).size() == 1);
  CHECK(sorted(one_part->at(1000)[0]) == expected1);
  auto p3 = three->at(1000);
  REQUIRE(p3.size() == 3);
  CHECK(flatten_sorted(p3) == expected1);
  // Every key lands in exactly one partition.
  std::set<std::string> keys;
  for (auto& p : p3)
    for (auto& kv : p)
      CHECK(keys.insert(kv.first).second);
  CHECK(by_default->sorted(1000) == expected1);
  h.next_batch();
  REQUIRE(one_part->at(2000).size() == 1);
  CHECK(sorted(one_part->at(2000)[0]) == counts{{"y", 1}});
  CHECK(flatten_sorted(three->at(2000)) == counts{{"y", 1}});
  CHECK(by_default->sorted(2000) == counts{{"y", 1}});
  h.next_batch();
  CHECK(by_default->sorted(3000) == counts{{"q", 1}});
  h.next_batch();
  REQUIRE(three->at(4000).size() == 3);
  CHECK(flatten_sorted(three->at(4000)).empty());
}

TEST_CASE("group_by_key gathers all values of each key", "[operators]") {
  using grouped = std::vector<std::pair<std::string, std::vector<int64_t>>>;
  local_harness h{2};
  auto& ssc = h.ssc();
  using kv = std::pair<std::string, int64_t>;
  auto a = ssc.queue_stream<kv>({{{"a", 1}, {"b", 2}, {"a", 3}}, {}, {{"c", 9}}});
  auto b = ssc.queue_stream<kv>({{{"a", 1}, {"c", 5}}, {}, {}});
  auto groups = h.collect(a.union_with(b).group_by_key(3).map(
    [](std::pair<std::string, std::vector<int64_t>> g) {
      std::sort(g.second.begin(), g.second.end());
      return g;
    }));
  h.start();
  h.next_batch();
  CHECK(groups->sorted(1000) == grouped{{"a", {1, 1, 3}}, {"b", {2}}, {"c", {5}}});
  h.next_batch();
  CHECK(groups->sorted(2000).empty());
  h.next_batch();
  CHECK(groups->sorted(3000) == grouped{{"c", {9}}});
}

TEST_CASE("combine_by_key computes per-key averages through sum and count combiners",
          "[operators]") {
  using kv = std::pair<std::string, int64_t>;
  using sc = std::pair<int64_t, int64_t>; // (sum, count)
  using avg = std::vector<std::pair<std::string, double>>;
  local_harness h{2};
  auto& ssc = h.ssc();
  auto a = ssc.queue_stream<kv>({{{"a", 1}, {"b", 10}, {"a", 2}}, {{"z", 7}}});
  auto b = ssc.queue_stream<kv>({{{"a", 3}, {"b", 20}, {"c", 4}}, {}});
  auto merged_combiners = std::make_shared<std::atomic<int>>(0);
  auto averages = h.collect(
    a.union_with(b)
      .combine_by_key([](int64_t v) { return sc{v, 1}; },
                      [](sc c, int64_t v) { return sc{c.first + v, c.second + 1}; },
                      [merged_combiners](sc x, sc y) {
                        ++*merged_combiners;
                        return sc{x.first + y.first, x.second + y.second};
                      },
                      2)
      .map([](std::pair<std::string, sc> x) {
        return std::pair<std::string, double>{
          x.first, static_cast<double>(x.second.first) / static_cast<double>(x.second.second)};
      }));
  h.start();
  h.next_batch();
  CHECK(averages->sorted(1000) == avg{{"a", 2.0}, {"b", 15.0}, {"c", 4.0}});
  // "a" and "b" arrive from both map tasks: their combiners were merged.
  CHECK(merged_combiners->load() == 2);
  h.next_batch();
  CHECK(averages->sorted(2000) == avg{{"z", 7.0}});
}

TEST_CASE("a chain of shuffles reduces then maps then reduces again",
          "[operators]") {
  local_harness h{2};
  auto words = h.ssc().queue_stream<std::string>(
    {{"a", "a", "b", "c", "c", "c", "d"}, {}, {"e", "e", "f", "f"}});
  // Word counts, then how many words have each count.
  auto histogram = h.collect(words.map(one)
                               .reduce_by_key(add, 3)
                               .map([](std::pair<std::string, int64_t> wc) {
                                 return std::pair<int64_t, int64_t>{wc.second, 1};
                               })
                               .reduce_by_key(add, 2)
                               .repartition(2)
                               .filter([](const std::pair<int64_t, int64_t>&) { return true; }));
  auto total = h.collect(words.map(one).reduce_by_key(add, 3).count());
  h.start();
  h.next_batch();
  CHECK(histogram->sorted(1000)
        == std::vector<std::pair<int64_t, int64_t>>{{1, 2}, {2, 1}, {3, 1}});
  CHECK(total->sorted(1000) == ints{4});
  h.next_batch();
  CHECK(histogram->sorted(2000).empty());
  CHECK(total->sorted(2000) == ints{0});
  h.next_batch();
  CHECK(histogram->sorted(3000) == std::vector<std::pair<int64_t, int64_t>>{{2, 2}});
  CHECK(total->sorted(3000) == ints{2});
}

TEST_CASE("several outputs of one stream see the same data and share its shuffle",
          "[operators]") {
  local_harness h{2};
  auto words = h.ssc().queue_stream<std::string>({{"a", "b", "a"}, {"c"}, {}});
  auto map_calls = std::make_shared<std::atomic<int>>(0);
  auto counted = words
                   .map([map_calls](std::string w) {
                     ++*map_calls;
                     return std::pair<std::string, int64_t>{std::move(w), 1};
                   })
                   .reduce_by_key(add, 3);
  auto first = h.collect(counted);
  auto second = h.collect(counted);
  auto partitions_seen = std::make_shared<std::atomic<int>>(0);
  counted.foreach_partition([partitions_seen](const output_partition&,
                                              std::vector<std::pair<std::string, int64_t>>&) {
    ++*partitions_seen;
  });
  h.start();
  h.next_batch();
  CHECK(first->sorted(1000) == counts{{"a", 2}, {"b", 1}});
  CHECK(second->sorted(1000) == first->sorted(1000));
  // Three jobs, one map stage: the map side ran once per record.
  CHECK(map_calls->load() == 3);
  CHECK(partitions_seen->load() == 3);
  h.next_batch();
  CHECK(first->sorted(2000) == counts{{"c", 1}});
  CHECK(second->sorted(2000) == counts{{"c", 1}});
  CHECK(map_calls->load() == 4);
  CHECK(partitions_seen->load() == 6);
  h.next_batch();
  CHECK(first->sorted(3000).empty());
  CHECK(second->sorted(3000).empty());
  CHECK(map_calls->load() == 4);
}


// -- records -------------------------------------------------------------------------

TEST_CASE("records of user types with inspect travel through map and reduce_by_key",
          "[operators]") {
  using optest::cell;
  using optest::point;
  local_harness h{2};
  auto& ssc = h.ssc();
  auto ps = ssc.queue_stream<point>(
    {{{1, 2, "a"}, {3, 4, "b b"}, {1, 2, "a"}, {0, 0, ""}}, {}, {{-1, -2, "neg"}}});
  auto moved = h.collect(ps.map([](point p) {
    p.x += 10;
    p.tag += "!";
    return p;
  }));
  // A user type as a key with its own std::hash.
  auto per_point = h.collect(ps.map([](point p) { return std::pair<point, int64_t>{p, 1}; })
                               .reduce_by_key(add, 3));
  // A user type as a key without std::hash, and as a value.
  auto per_cell = h.collect(
    ps.map([](point p) {
        return std::pair<cell, point>{cell{p.tag, {p.x % 2, p.y % 2}}, p};
      })
      .reduce_by_key(
        [](point a, point b) { return point{a.x + b.x, a.y + b.y, a.tag + b.tag}; }, 2)
      .map([](std::pair<cell, point> kv) {
        return std::pair<cell, int64_t>{kv.first, kv.second.x + kv.second.y};
      }));
  h.start();
  h.next_batch();
  CHECK(moved->sorted(1000)
        == std::vector<point>{{10, 0, "!"}, {11, 2, "a!"}, {11, 2, "a!"}, {13, 4, "b b!"}});
  CHECK(per_point->sorted(1000)
        == std::vector<std::pair<point, int64_t>>{
          {{0, 0, ""}, 1}, {{1, 2, "a"}, 2}, {{3, 4, "b b"}, 1}});
  CHECK(per_cell->sorted(1000)
        == std::vector<std::pair<cell, int64_t>>{
          {cell{"", {0, 0}}, 0}, {cell{"a", {1, 0}}, 6}, {cell{"b b", {1, 0}}, 7}});
  h.next_batch();
  CHECK(moved->sorted(2000).empty());
  CHECK(per_point->sorted(2000).empty());
  h.next_batch();
  CHECK(moved->sorted(3000) == std::vector<point>{{9, -2, "neg!"}});
  CHECK(per_point->sorted(3000)
        == std::vector<std::pair<point, int64_t>>{{{-1, -2, "neg"}, 1}});
  CHECK(per_cell->sorted(3000)
        == std::vector<std::pair<cell, int64_t>>{{cell{"neg", {-1, 0}}, -3}});
}

TEST_CASE("string keys with spaces and empty strings stay distinct through a shuffle",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  strings keys{"", " ", "  ", "a b", "a  b", " a", "a ", "a", "\t", "a\tb", "\n"};
  strings batch;
  for (size_t i = 0; i < keys.size(); ++i)
    for (size_t j = 0; j <= i; ++j)
      batch.push_back(keys[i]);
  auto xs = ssc.queue_stream<std::string>({batch, {"", ""}});
  auto totals = h.collect(xs.map(one).reduce_by_key(add, 3));
  auto grouped = h.collect(xs.map([](std::string s) {
                               return std::pair<std::string, std::string>{s, s + "|"};
                             })
                             .group_by_key(2)
                             .map([](std::pair<std::string, std::vector<std::string>> g) {
                               return std::pair<std::string, int64_t>{
                                 g.first, static_cast<int64_t>(g.second.size())};
                             }));
  h.start();
  h.next_batch();
  counts expected;
  for (size_t i = 0; i < keys.size(); ++i)
    expected.emplace_back(keys[i], static_cast<int64_t>(i + 1));
  std::sort(expected.begin(), expected.end());
  CHECK(totals->sorted(1000) == expected);
  CHECK(grouped->sorted(1000) == expected);
  h.next_batch();
  CHECK(totals->sorted(2000) == counts{{"", 2}});
  CHECK(grouped->sorted(2000) == counts{{"", 2}});
}

TEST_CASE("a long run of 50 batches adds up to the totals of its input",
          "[operators]") {
  local_harness h{2};
  std::vector<std::vector<std::string>> batches;
  std::string all_text;
  for (uint64_t b = 0; b < 50; ++b) {
    // Every seventh batch is empty.
    auto text = b % 7 == 3 ? std::string{} : make_text(b % 5 + 1, b);
    all_text += text;
    std::vector<std::string> lines;
    std::istringstream in{text};
    std::string line;
    while (std::getline(in, line))
      lines.push_back(line);
    batches.push_back(std::move(lines));
  }
  auto expected_lines = batches;
  auto lines = h.ssc().queue_stream<std::string>(std::move(batches));
  auto word_counts = h.collect(apps::word_counts(lines));
  auto line_counts = h.collect(lines.count());
  h.start();
  std::map<std::string, int64_t> totals;
  for (int b = 0; b < 50; ++b) {
    auto info = h.next_batch();
    time_ms t = (b + 1) * 1000;
    INFO("batch " << t);
    CHECK(info.failed_jobs == 0);
    CHECK(info.records == expected_lines[b].size());
    CHECK(line_counts->sorted(t) == ints{static_cast<int64_t>(expected_lines[b].size())});
    std::string text;
    for (auto& l : expected_lines[b])
      text += l + "\n";
    auto expected_batch = count_words(text);
    auto got = word_counts->sorted(t);
    CHECK(got == counts(expected_batch.begin(), expected_batch.end()));
    for (auto& [w, n] : got)
      totals[w] += n;
  }
  CHECK(totals == count_words(all_text));
}
