// The shuffle across 2 and 3 local workers: map tasks bucket records into
// their node's BlockManager, reduce tasks fetch their bucket from every map
// task (locally or from another worker's BlockManager) and merge it.

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/local_harness.hpp"

using namespace sluice;
using namespace sluice::test;

namespace {

using kv = std::pair<std::string, int64_t>;
using counts = std::vector<kv>;

int64_t add(int64_t a, int64_t b) {
  return a + b;
}

std::string key_of(int i) {
  return "key-" + std::to_string(i);
}

/// Where a transform saw each key: key -> reduce partition, plus every
/// disagreement (a key seen in two partitions).
struct placement {
  std::mutex mtx;
  std::map<std::string, uint32_t> partition_of;
  std::set<uint32_t> partitions_used;
  std::vector<std::string> conflicts;
  std::vector<std::string> bad_infos;

  void see(const partition_info& info, const std::string& key,
           uint32_t expected_partitions) {
    std::lock_guard<std::mutex> guard{mtx};
    if (info.partitions != expected_partitions || info.partition >= info.partitions)
      bad_infos.push_back(key + " in partition " + std::to_string(info.partition)
                          + " of " + std::to_string(info.partitions));
    partitions_used.insert(info.partition);
    auto [i, added] = partition_of.emplace(key, info.partition);
    if (!added && i->second != info.partition)
      conflicts.push_back(key + " in partitions " + std::to_string(i->second)
                          + " and " + std::to_string(info.partition) + " at "
                          + std::to_string(info.time) + " ms");
  }
};

counts to_counts(const std::map<std::string, int64_t>& m) {
  return counts(m.begin(), m.end());
}

/// 1000 distinct keys over several batches (each batch one queued block),
/// plus a second stream that adds some keys in one batch only, so the map
/// side has one partition in some batches and two in others.
void check_many_keys(uint32_t workers) {
  constexpr int keys = 1000;
  constexpr uint32_t reducers = 5;
  constexpr int batches = 5;
  local_harness h{workers};
  auto& ssc = h.ssc();
  std::vector<std::vector<kv>> main_batches;
  std::vector<std::map<std::string, int64_t>> expected(batches);
  for (int b = 0; b < batches; ++b) {
    std::vector<kv> batch;
    if (b != 2) { // batch 3 is a queued empty batch
      for (int i = 0; i < keys; ++i) {
        batch.emplace_back(key_of(i), i * (b + 1) + 1);
        expected[b][key_of(i)] += i * (b + 1) + 1;
        if (i % 3 == 0) {
          batch.emplace_back(key_of(i), 2);
          expected[b][key_of(i)] += 2;
        }
      }
      // Shuffle the order so no map task sees keys sorted.
      std::reverse(batch.begin() + static_cast<long>(batch.size() / 3), batch.end());
    }
    main_batches.push_back(std::move(batch));
  }
  std::vector<kv> extra;
  for (int i = 0; i < keys; i += 7) {
    extra.emplace_back(key_of(i), 1000000);
    expected[1][key_of(i)] += 1000000;
  }
  // Keys nobody else has, only in batch 2.
  for (int i = keys; i < keys + 10; ++i) {
    extra.emplace_back(key_of(i), 5);
    expected[1][key_of(i)] += 5;
  }
  auto main = ssc.queue_stream<kv>(std::move(main_batches));
  auto more = ssc.queue_stream<kv>({{}, extra});
  auto seen = std::make_shared<placement>();
  auto reduced = main.union_with(more).reduce_by_key(add, reducers);
  auto placed = reduced.transform([seen](const partition_info& info, std::vector<kv>&& xs) {
    for (auto& x : xs)
      seen->see(info, x.first, reducers);
    return std::move(xs);
  });
  auto sink = collect_partitions(placed);
  h.start();
  for (int b = 0; b < batches; ++b) {
    time_ms t = (b + 1) * 1000;
    INFO("batch " << t << " with " << workers << " workers");
    auto info = h.next_batch();
    CHECK(info.failed_jobs == 0);
    auto parts = sink->at(t);
    REQUIRE(parts.size() == reducers);
    auto got = flatten_sorted(parts);
    CHECK(got.size() == expected[b].size());
    CHECK(got == to_counts(expected[b]));
    // Each key once per batch: no duplicates across reduce partitions.
    std::set<std::string> distinct;
    for (auto& x : got)
      distinct.insert(x.first);
    CHECK(distinct.size() == got.size());
  }
  std::lock_guard<std::mutex> guard{seen->mtx};
  CHECK(seen->conflicts.empty());
  if (!seen->conflicts.empty())
    FAIL_CHECK("first conflict: " << seen->conflicts.front());
  CHECK(seen->bad_infos.empty());
  CHECK(seen->partition_of.size() == keys + 10);
  // 1010 keys spread over 5 reducers: every reducer got some.
  CHECK(seen->partitions_used == std::set<uint32_t>{0, 1, 2, 3, 4});
}

} // namespace

TEST_CASE("reduce_by_key over 1000 keys gives exact totals across 2 workers",
          "[shuffle]") {
  check_many_keys(2);
}

TEST_CASE("reduce_by_key over 1000 keys gives exact totals across 3 workers",
          "[shuffle]") {
  check_many_keys(3);
}

TEST_CASE("a key lands in the same reduce partition whatever the map side looks like",
          "[shuffle]") {
  // The same keys through two reduce_by_key nodes with the same partition
  // count but different map sides (1 and 4 map partitions, and different
  // combiners per map task): a key's reduce partition depends on the key
  // alone, never on the value or on where the map side ran.
  local_harness h{3};
  auto& ssc = h.ssc();
  std::vector<kv> batch;
  for (int i = 0; i < 200; ++i)
    batch.emplace_back(key_of(i), i);
  std::vector<kv> first(batch.begin(), batch.begin() + 50);
  std::vector<kv> second(batch.begin() + 50, batch.begin() + 120);
  std::vector<kv> third(batch.begin() + 120, batch.end());
  auto whole = ssc.queue_stream<kv>({batch, batch});
  auto a = ssc.queue_stream<kv>({first, third});
  auto b = ssc.queue_stream<kv>({second, first});
  auto c = ssc.queue_stream<kv>({third, second});
  // Every key once more with 0: the sums stay, the map-side combiners differ.
  std::vector<kv> zeros;
  for (int i = 0; i < 200; ++i)
    zeros.emplace_back(key_of(i), 0);
  auto d = ssc.queue_stream<kv>({zeros, zeros});
  auto single = std::make_shared<placement>();
  auto split = std::make_shared<placement>();
  auto track = [](std::shared_ptr<placement> p) {
    return [p](const partition_info& info, std::vector<kv>&& xs) {
      for (auto& x : xs)
        p->see(info, x.first, 4);
      return std::move(xs);
    };
  };
  auto s1 = h.collect(whole.reduce_by_key(add, 4).transform(track(single)));
  auto s2 = h.collect(
    ssc.union_of(std::vector<dstream<kv>>{a, b, c, d}).reduce_by_key(add, 4).transform(track(split)));
  h.start();
  h.next_batch();
  h.next_batch();
  auto expected = batch;
  std::sort(expected.begin(), expected.end());
  CHECK(s1->sorted(1000) == expected);
  CHECK(s2->sorted(1000) == expected);
  CHECK(s1->sorted(2000) == expected);
  CHECK(s2->sorted(2000) == expected);
  std::lock_guard<std::mutex> g1{single->mtx};
  std::lock_guard<std::mutex> g2{split->mtx};
  CHECK(single->conflicts.empty());
  CHECK(split->conflicts.empty());
  CHECK(single->bad_infos.empty());
  CHECK(split->bad_infos.empty());
  REQUIRE(single->partition_of.size() == 200);
  CHECK(single->partition_of == split->partition_of);
}

TEST_CASE("a shuffle whose map side leaves buckets empty still has every reduce partition",
          "[shuffle]") {
  local_harness h{3};
  auto& ssc = h.ssc();
  // Two keys into 8 reducers: at most 2 buckets get a block.
  auto xs = ssc.queue_stream<kv>({{{"a", 1}, {"b", 2}, {"a", 3}}, {}, {{"b", 4}}});
  // A second map partition that is always empty or absent.
  auto ys = ssc.queue_stream<kv>({{}, {}, {}});
  auto eight = collect_partitions(xs.union_with(ys).reduce_by_key(add, 8));
  auto grouped = collect_partitions(xs.group_by_key(6));
  auto counted = h.collect(xs.union_with(ys).reduce_by_key(add, 8).count());
  h.start();
  h.next_batch();
  auto p = eight->at(1000);
  REQUIRE(p.size() == 8);
  CHECK(flatten_sorted(p) == counts{{"a", 4}, {"b", 2}});
  auto non_empty = std::count_if(p.begin(), p.end(), [](auto& x) { return !x.empty(); });
  CHECK(non_empty >= 1);
  CHECK(non_empty <= 2);
  auto g = grouped->at(1000);
  REQUIRE(g.size() == 6);
  auto gs = flatten_sorted(g);
  REQUIRE(gs.size() == 2);
  CHECK(gs[0].first == "a");
  CHECK(gs[1].first == "b");
  auto a_values = gs[0].second;
  std::sort(a_values.begin(), a_values.end());
  CHECK(a_values == std::vector<int64_t>{1, 3});
  CHECK(gs[1].second == std::vector<int64_t>{2});
  CHECK(counted->sorted(1000) == std::vector<int64_t>{2});
  // Batch 2: both map tasks ran and wrote nothing.
  h.next_batch();
  p = eight->at(2000);
  REQUIRE(p.size() == 8);
  CHECK(flatten_sorted(p).empty());
  REQUIRE(grouped->at(2000).size() == 6);
  CHECK(flatten_sorted(grouped->at(2000)).empty());
  CHECK(counted->sorted(2000) == std::vector<int64_t>{0});
  h.next_batch();
  p = eight->at(3000);
  REQUIRE(p.size() == 8);
  CHECK(flatten_sorted(p) == counts{{"b", 4}});
  // Batch 4: no map task at all (both queues ran dry).
  h.next_batch();
  p = eight->at(4000);
  REQUIRE(p.size() == 8);
  CHECK(flatten_sorted(p).empty());
  CHECK(counted->sorted(4000) == std::vector<int64_t>{0});
}

TEST_CASE("group_by_key without map-side combine keeps every value including duplicates",
          "[shuffle]") {
  local_harness h{3};
  auto& ssc = h.ssc();
  // 50 keys, each with repeated values, spread over 3 map partitions.
  std::vector<std::vector<kv>> parts(3);
  std::map<std::string, std::vector<int64_t>> expected;
  for (int i = 0; i < 50; ++i) {
    for (int j = 0; j < i % 6 + 1; ++j) {
      auto value = static_cast<int64_t>(j % 2); // 0, 1, 0, 1, ... duplicates
      parts[static_cast<size_t>((i + j) % 3)].emplace_back(key_of(i), value);
      expected[key_of(i)].push_back(value);
    }
  }
  for (auto& [k, vs] : expected)
    std::sort(vs.begin(), vs.end());
  auto a = ssc.queue_stream<kv>({parts[0], {}});
  auto b = ssc.queue_stream<kv>({parts[1], {{"late", 7}, {"late", 7}}});
  auto c = ssc.queue_stream<kv>({parts[2], {{"late", 7}}});
  using group = std::pair<std::string, std::vector<int64_t>>;
  auto groups = h.collect(ssc.union_of(std::vector<dstream<kv>>{a, b, c})
                            .group_by_key(4)
                            .map([](group g) {
                              std::sort(g.second.begin(), g.second.end());
                              return g;
                            }));
  h.start();
  h.next_batch();
  auto got = groups->sorted(1000);
  CHECK(got == std::vector<group>(expected.begin(), expected.end()));
  size_t values = 0;
  for (auto& g : got)
    values += g.second.size();
  size_t sent = parts[0].size() + parts[1].size() + parts[2].size();
  CHECK(values == sent);
  h.next_batch();
  CHECK(groups->sorted(2000) == std::vector<group>{{"late", {7, 7, 7}}});
}
