// Narrow DStream operators (map, flat_map, filter, map_partitions,
// transform, unions), batch by batch, on a real local-mode cluster (driver +
// 2 in-process workers, the real actors and Cap'n Proto messages) driven by
// a manual clock: h.next_batch() runs exactly one batch, so each batch's
// output is compared with the exact expected records.

#include <catch2/catch.hpp>

#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/support/local_harness.hpp"
#include "tests/unit/operator_tests.hpp"

using namespace sluice;
using namespace sluice::test;

// -- narrow transformations ------------------------------------------------------

TEST_CASE("map changes the record type and keeps it batch by batch",
          "[operators]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<int64_t>({{1, 2, 3}, {}, {-7, 10}});
  auto as_text = h.collect(xs.map([](int64_t x) { return "n" + std::to_string(x); }));
  auto doubled = h.collect(xs.map([](int64_t x) { return x * 2; }));
  // Two maps of the same type in a row take the in-place path twice.
  auto chained = h.collect(xs.map([](int64_t x) { return x + 1; })
                             .map([](int64_t x) { return x * 10; }));
  h.start();
  h.next_batch();
  CHECK(as_text->sorted(1000) == strings{"n1", "n2", "n3"});
  CHECK(doubled->sorted(1000) == ints{2, 4, 6});
  CHECK(chained->sorted(1000) == ints{20, 30, 40});
  h.next_batch();
  CHECK(as_text->has(2000));
  CHECK(as_text->sorted(2000).empty());
  CHECK(doubled->sorted(2000).empty());
  CHECK(chained->sorted(2000).empty());
  h.next_batch();
  CHECK(as_text->sorted(3000) == strings{"n-7", "n10"});
  CHECK(doubled->sorted(3000) == ints{-14, 20});
  CHECK(chained->sorted(3000) == ints{-60, 110});
  // Past the end of the queue: empty batches.
  h.next_batch();
  CHECK(as_text->has(4000));
  CHECK(as_text->sorted(4000).empty());
}

TEST_CASE("flat_map returning a range emits every element of every range",
          "[operators]") {
  local_harness h{2};
  auto lines = h.ssc().queue_stream<std::string>({{"a b", "", "c"}, {}, {"d d d"}});
  auto words = h.collect(lines.flat_map([](std::string line) {
    std::vector<std::string> out;
    std::istringstream in{line};
    std::string w;
    while (in >> w)
      out.push_back(w);
    return out;
  }));
  h.start();
  h.next_batch();
  CHECK(words->sorted(1000) == strings{"a", "b", "c"});
  h.next_batch();
  CHECK(words->sorted(2000).empty());
  h.next_batch();
  CHECK(words->sorted(3000) == strings{"d", "d", "d"});
}

TEST_CASE("flat_map with an emitter emits zero or more records per input",
          "[operators]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<int64_t>({{0, 1, 3}, {2}});
  // x -> x copies of "x:i", of another type than the input.
  auto out = h.collect(xs.flat_map<std::string>([](int64_t x, emitter<std::string>& emit) {
    for (int64_t i = 0; i < x; ++i)
      emit(std::to_string(x) + ":" + std::to_string(i));
  }));
  // The emplace form and the same type as the input.
  auto same = h.collect(xs.flat_map<int64_t>([](int64_t x, emitter<int64_t>& emit) {
    emit.emplace(x);
    emit.emplace(-x);
  }));
  h.start();
  h.next_batch();
  CHECK(out->sorted(1000) == strings{"1:0", "3:0", "3:1", "3:2"});
  CHECK(same->sorted(1000) == ints{-3, -1, 0, 0, 1, 3});
  h.next_batch();
  CHECK(out->sorted(2000) == strings{"2:0", "2:1"});
  CHECK(same->sorted(2000) == ints{-2, 2});
}

TEST_CASE("filter keeps exactly the records its predicate accepts",
          "[operators]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<int64_t>({{1, 2, 3, 4, 5, 6}, {1, 3}, {}});
  auto even = h.collect(xs.filter([](const int64_t& x) { return x % 2 == 0; }));
  auto none = h.collect(xs.filter([](const int64_t&) { return false; }));
  auto all = h.collect(xs.filter([](const int64_t&) { return true; }));
  h.start();
  h.next_batch();
  CHECK(even->sorted(1000) == ints{2, 4, 6});
  CHECK(none->sorted(1000).empty());
  CHECK(all->sorted(1000) == ints{1, 2, 3, 4, 5, 6});
  h.next_batch();
  CHECK(even->sorted(2000).empty());
  CHECK(all->sorted(2000) == ints{1, 3});
  h.next_batch();
  CHECK(all->sorted(3000).empty());
}

TEST_CASE("map_partitions runs once per partition of every batch",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto a = ssc.queue_stream<int64_t>({{1, 2, 3}, {4}});
  auto b = ssc.queue_stream<int64_t>({{10, 20}, {}});
  // One partition per stream and batch: the union has two.
  auto sizes = h.collect(a.union_with(b).map_partitions([](std::vector<int64_t>&& xs) {
    int64_t sum = 0;
    for (auto x : xs)
      sum += x;
    return std::vector<std::pair<int64_t, int64_t>>{{static_cast<int64_t>(xs.size()), sum}};
  }));
  h.start();
  h.next_batch();
  CHECK(sizes->sorted(1000) == std::vector<std::pair<int64_t, int64_t>>{{2, 30}, {3, 6}});
  h.next_batch();
  // b's partition of batch 2 exists (an empty queued batch) and is empty.
  CHECK(sizes->sorted(2000) == std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {1, 4}});
  h.next_batch();
  // Past both queues' ends there are no partitions at all.
  CHECK(sizes->has(3000));
  CHECK(sizes->sorted(3000).empty());
}

TEST_CASE("transform sees the batch time and a consistent partition index",
          "[operators]") {
  using seen = std::tuple<int64_t, uint32_t, uint32_t, int64_t>; // time, p, n, size
  local_harness h{2};
  auto xs = h.ssc().queue_stream<int64_t>({{1, 2, 3, 4, 5, 6, 7}, {8, 9}, {}});
  auto info_of = [](const partition_info& info, std::vector<int64_t>&& xs) {
    return std::vector<seen>{
      seen{info.time, info.partition, info.partitions, static_cast<int64_t>(xs.size())}};
  };
  auto direct = h.collect(xs.transform(info_of));
  auto spread = h.collect(xs.repartition(3).transform(info_of));
  // transform may also drop records by time.
  auto only_second = h.collect(xs.transform(
    [](const partition_info& info, std::vector<int64_t>&& xs) {
      return info.time == 2000 ? std::move(xs) : std::vector<int64_t>{};
    }));
  h.start();
  for (time_ms t = 1000; t <= 3000; t += 1000) {
    h.next_batch();
    INFO("batch " << t);
    int64_t expected_total = t == 1000 ? 7 : t == 2000 ? 2 : 0;
    auto d = direct->sorted(t);
    REQUIRE(d.size() == 1);
    CHECK(std::get<0>(d[0]) == t);
    CHECK(std::get<1>(d[0]) == 0);
    CHECK(std::get<2>(d[0]) == 1);
    CHECK(std::get<3>(d[0]) == expected_total);
    auto s = spread->sorted(t);
    REQUIRE(s.size() == 3);
    int64_t total = 0;
    for (uint32_t p = 0; p < 3; ++p) {
      CHECK(std::get<0>(s[p]) == t);
      CHECK(std::get<1>(s[p]) == p);
      CHECK(std::get<2>(s[p]) == 3);
      total += std::get<3>(s[p]);
    }
    CHECK(total == expected_total);
  }
  CHECK(only_second->sorted(1000).empty());
  CHECK(only_second->sorted(2000) == ints{8, 9});
  CHECK(only_second->sorted(3000).empty());
}

TEST_CASE("union_with and union_of concatenate their streams batch by batch",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto a = ssc.queue_stream<int64_t>({{1, 2}, {}, {3}});
  auto b = ssc.queue_stream<int64_t>({{10}, {20}, {}});
  auto c = ssc.queue_stream<int64_t>({{100}, {}, {300, 301}});
  auto ab = h.collect(a.union_with(b));
  auto abc = h.collect(ssc.union_of(std::vector<dstream<int64_t>>{a, b, c}));
  auto only = h.collect(ssc.union_of(std::vector<dstream<int64_t>>{c}));
  h.start();
  h.next_batch();
  CHECK(ab->sorted(1000) == ints{1, 2, 10});
  CHECK(abc->sorted(1000) == ints{1, 2, 10, 100});
  CHECK(only->sorted(1000) == ints{100});
  h.next_batch();
  CHECK(ab->sorted(2000) == ints{20});
  CHECK(abc->sorted(2000) == ints{20});
  CHECK(only->sorted(2000).empty());
  h.next_batch();
  CHECK(ab->sorted(3000) == ints{3});
  CHECK(abc->sorted(3000) == ints{3, 300, 301});
  CHECK(only->sorted(3000) == ints{300, 301});
  CHECK_THROWS_AS(ssc.union_of(std::vector<dstream<int64_t>>{}), std::invalid_argument);
}

TEST_CASE("a diamond of a stream unioned with a map of itself transforms each record once per branch",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto xs = ssc.queue_stream<int64_t>({{1, 2, 3}, {}, {5}});
  auto tenfold = xs.map([](int64_t x) { return x * 10; });
  auto diamond = xs.union_with(tenfold);
  auto plain = h.collect(diamond);
  // Both branches again, each twice-transformed: x -> x+1 and x -> 10x+1.
  auto twice = h.collect(diamond.map([](int64_t x) { return x + 1; }));
  // The diamond unioned with itself doubles every record exactly once.
  auto doubled = h.collect(diamond.union_with(diamond));
  // And a diamond after a shuffle: both branches read one shared shuffle.
  auto sums = xs.map([](int64_t x) { return std::pair<int64_t, int64_t>{x % 2, x}; })
                .reduce_by_key(add, 3);
  auto keyed = h.collect(sums.union_with(
    sums.map([](std::pair<int64_t, int64_t> kv) { return std::pair<int64_t, int64_t>{kv.first + 100, kv.second * 2}; })));
  h.start();
  h.next_batch();
  CHECK(plain->sorted(1000) == ints{1, 2, 3, 10, 20, 30});
  CHECK(twice->sorted(1000) == ints{2, 3, 4, 11, 21, 31});
  CHECK(doubled->sorted(1000) == ints{1, 1, 2, 2, 3, 3, 10, 10, 20, 20, 30, 30});
  CHECK(keyed->sorted(1000)
        == std::vector<std::pair<int64_t, int64_t>>{{0, 2}, {1, 4}, {100, 4}, {101, 8}});
  h.next_batch();
  CHECK(plain->sorted(2000).empty());
  CHECK(doubled->sorted(2000).empty());
  CHECK(keyed->sorted(2000).empty());
  h.next_batch();
  CHECK(plain->sorted(3000) == ints{5, 50});
  CHECK(twice->sorted(3000) == ints{6, 51});
  CHECK(doubled->sorted(3000) == ints{5, 5, 50, 50});
  CHECK(keyed->sorted(3000) == std::vector<std::pair<int64_t, int64_t>>{{1, 5}, {101, 10}});
}
