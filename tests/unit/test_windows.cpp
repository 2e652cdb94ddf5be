#include <catch2/catch.hpp>

#include <filesystem>

#include "tests/support/local_harness.hpp"

using namespace sluice;
using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

using strings = std::vector<std::string>;
using counts = std::vector<std::pair<std::string, int64_t>>;

/// Runs `n` batches and returns the sink's sorted content per batch time
/// that produced output.
template <class T>
std::map<time_ms, std::vector<T>> run_batches(local_harness& h,
                                              std::shared_ptr<batch_sink<T>>& sink,
                                              int n) {
  for (int i = 0; i < n; ++i)
    h.next_batch();
  std::map<time_ms, std::vector<T>> result;
  std::lock_guard<std::mutex> guard{sink->mtx};
  for (auto& [t, xs] : sink->batches) {
    auto sorted = xs;
    std::sort(sorted.begin(), sorted.end());
    result[t] = sorted;
  }
  return result;
}

} // namespace

TEST_CASE("a sliding window holds the batches of its length at every batch", "[windows]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<std::string>({{"a"}, {"b"}, {"c"}, {"d"}, {}});
  auto sink = h.collect(xs.window(3s, 1s));
  h.start();
  auto out = run_batches(h, sink, 7);
  CHECK(out[1000] == strings{"a"});
  CHECK(out[2000] == strings{"a", "b"});
  CHECK(out[3000] == strings{"a", "b", "c"});
  CHECK(out[4000] == strings{"b", "c", "d"});
  CHECK(out[5000] == strings{"c", "d"});
  CHECK(out[6000] == strings{"d"});
  CHECK(out[7000].empty());
}

TEST_CASE("a tumbling window produces output only at its slide", "[windows]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<std::string>({{"a"}, {"b"}, {"c"}, {"d"}});
  auto sink = h.collect(xs.window(2s, 2s));
  h.start();
  auto out = run_batches(h, sink, 6);
  CHECK(out.size() == 3);
  CHECK(out.count(1000) == 0);
  CHECK(out[2000] == strings{"a", "b"});
  CHECK(out.count(3000) == 0);
  CHECK(out[4000] == strings{"c", "d"});
  CHECK(out[6000].empty());
}

TEST_CASE("an overlapping window with a slide longer than the batch interval", "[windows]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<std::string>({{"a"}, {"b"}, {"c"}, {"d"}, {"e"}, {"f"}});
  auto sink = h.collect(xs.window(4s, 2s));
  h.start();
  auto out = run_batches(h, sink, 8);
  CHECK(out.size() == 4);
  CHECK(out[2000] == strings{"a", "b"});
  CHECK(out[4000] == strings{"a", "b", "c", "d"});
  CHECK(out[6000] == strings{"c", "d", "e", "f"});
  CHECK(out[8000] == strings{"e", "f"});
}

TEST_CASE("reduce_by_key_and_window counts keys entering and leaving the window",
          "[windows]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<std::string>({{"a", "b"}, {"a"}, {"c"}, {}, {}});
  auto pairs = xs.map([](std::string w) { return std::pair<std::string, int64_t>{w, 1}; });
  auto sink = h.collect(
    pairs.reduce_by_key_and_window([](int64_t a, int64_t b) { return a + b; }, 2s, 1s, 3));
  h.start();
  auto out = run_batches(h, sink, 5);
  CHECK(out[1000] == counts{{"a", 1}, {"b", 1}});
  CHECK(out[2000] == counts{{"a", 2}, {"b", 1}});
  CHECK(out[3000] == counts{{"a", 1}, {"c", 1}});
  CHECK(out[4000] == counts{{"c", 1}});
  CHECK(out[5000].empty());
}

TEST_CASE("count_by_window counts every window and an empty one as 0", "[windows]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<std::string>({{"a", "b"}, {"c"}, {}, {}});
  auto sink = h.collect(xs.count_by_window(2s, 1s));
  h.start();
  auto out = run_batches(h, sink, 4);
  CHECK(out[1000] == std::vector<int64_t>{2});
  CHECK(out[2000] == std::vector<int64_t>{3});
  CHECK(out[3000] == std::vector<int64_t>{1});
  CHECK(out[4000] == std::vector<int64_t>{0});
}

TEST_CASE("reduce_by_window count_by_value_and_window and group_by_key_and_window",
          "[windows]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<int64_t>({{1, 2}, {3}, {4}});
  auto sum = h.collect(xs.reduce_by_window([](int64_t a, int64_t b) { return a + b; }, 2s, 1s));
  auto by_value = h.collect(xs.map([](int64_t x) { return x % 2; })
                              .count_by_value_and_window(2s, 1s, 2));
  auto grouped = h.collect(xs.map([](int64_t x) { return std::pair<int64_t, int64_t>{x % 2, x}; })
                             .group_by_key_and_window(2s, 2s, 2));
  h.start();
  for (int i = 0; i < 4; ++i)
    h.next_batch();
  CHECK(sum->sorted(1000) == std::vector<int64_t>{3});
  CHECK(sum->sorted(2000) == std::vector<int64_t>{6});
  CHECK(sum->sorted(3000) == std::vector<int64_t>{7});
  CHECK(sum->sorted(4000) == std::vector<int64_t>{4});
  using vc = std::vector<std::pair<int64_t, int64_t>>;
  CHECK(by_value->sorted(2000) == vc{{0, 1}, {1, 2}});
  CHECK(by_value->sorted(3000) == vc{{0, 1}, {1, 1}});
  auto g = grouped->sorted(2000);
  for (auto& kv : g)
    std::sort(kv.second.begin(), kv.second.end());
  using groups = std::vector<std::pair<int64_t, std::vector<int64_t>>>;
  CHECK(g == groups{{0, {2}}, {1, {1, 3}}});
  CHECK_FALSE(grouped->has(3000));
}

TEST_CASE("a window over a windowed stream reads the inner window's results", "[windows]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<std::string>({{"a"}, {"b"}, {"c"}, {"d"}});
  auto inner = xs.window(2s, 2s);          // at 2000: a b, at 4000: c d
  auto sink = h.collect(inner.window(4s, 4s));
  h.start();
  auto out = run_batches(h, sink, 4);
  CHECK(out.size() == 1);
  CHECK(out[4000] == strings{"a", "b", "c", "d"});
}

TEST_CASE("windows that do not fit the batch interval or each other are refused when built",
          "[windows]") {
  local_harness h{1};
  auto xs = h.ssc().queue_stream<std::string>({});
  CHECK_THROWS_WITH(xs.window(2500ms, 500ms),
                    Catch::Contains("window") && Catch::Contains("2500 ms")
                      && Catch::Contains("batch interval 1000 ms"));
  CHECK_THROWS_WITH(xs.window(3s, 2s),
                    Catch::Contains("slide 2000 ms does not divide the window length 3000 ms"));
  CHECK_THROWS_WITH(xs.count_by_window(0s, 1s), Catch::Contains("count_by_window"));
  auto slow = xs.window(2s, 2s);
  CHECK_THROWS_WITH(slow.window(3s, 3s), Catch::Contains("parent stream's slide 2000 ms"));
  CHECK_THROWS_WITH(xs.union_with(slow),
                    Catch::Contains("union") && Catch::Contains("different slides"));
}

namespace {

int64_t plus(int64_t a, int64_t b) {
  return a + b;
}

int64_t minus(int64_t a, int64_t b) {
  return a - b;
}

std::vector<std::vector<std::string>> random_batches(int n, uint64_t seed) {
  std::vector<std::vector<std::string>> result;
  uint64_t x = seed;
  for (int b = 0; b < n; ++b) {
    std::vector<std::string> batch;
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    auto size = (x >> 33) % 12; // some batches are empty
    for (uint64_t i = 0; i < size; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      batch.push_back("k" + std::to_string((x >> 33) % 6));
    }
    result.push_back(batch);
  }
  return result;
}

} // namespace

TEST_CASE("the incremental reduce_by_key_and_window with a filter equals the recomputed one",
          "[windows][inverse]") {
  temp_dir ckpt{"sluice-window"};
  local_harness h{2, std::chrono::seconds{1}, ckpt.path()};
  auto xs = h.ssc().queue_stream<std::string>(random_batches(30, 42));
  auto pairs = xs.map([](std::string w) { return std::pair<std::string, int64_t>{w, 1}; });
  auto recomputed = h.collect(pairs.reduce_by_key_and_window(plus, 4s, 2s, 3));
  auto incremental = h.collect(pairs.reduce_by_key_and_window(
    plus, minus, 4s, 2s, 3,
    [](const std::pair<std::string, int64_t>& kv) { return kv.second != 0; }));
  h.start();
  for (int i = 0; i < 34; ++i)
    h.next_batch();
  for (time_ms t = 2000; t <= 34000; t += 2000) {
    INFO("window at " << t << " ms");
    CHECK(incremental->sorted(t) == recomputed->sorted(t));
  }
  CHECK_FALSE(incremental->has(3000));
}

TEST_CASE("without a filter keys whose value returns to zero stay in the incremental window",
          "[windows][inverse]") {
  temp_dir ckpt{"sluice-window"};
  local_harness h{2, std::chrono::seconds{1}, ckpt.path()};
  auto xs = h.ssc().queue_stream<std::string>({{"a", "b"}, {"a"}, {}, {}});
  auto pairs = xs.map([](std::string w) { return std::pair<std::string, int64_t>{w, 1}; });
  auto sink = h.collect(pairs.reduce_by_key_and_window(plus, minus, 2s, 1s, 2));
  h.start();
  for (int i = 0; i < 4; ++i)
    h.next_batch();
  CHECK(sink->sorted(1000) == counts{{"a", 1}, {"b", 1}});
  CHECK(sink->sorted(2000) == counts{{"a", 2}, {"b", 1}});
  CHECK(sink->sorted(3000) == counts{{"a", 1}, {"b", 0}});
  CHECK(sink->sorted(4000) == counts{{"a", 0}, {"b", 0}});
}

TEST_CASE("an incremental window refuses to start without a checkpoint directory",
          "[windows][inverse]") {
  local_harness h{1};
  auto xs = h.ssc().queue_stream<std::string>({});
  xs.map([](std::string w) { return std::pair<std::string, int64_t>{w, 1}; })
    .reduce_by_key_and_window(plus, minus, 2s, 1s)
    .print();
  auto err = h.ssc().start();
  REQUIRE(err);
  CHECK_THAT(describe(err), Catch::Contains("reduce_by_key_and_window")
                              && Catch::Contains("checkpoint"));
}

TEST_CASE("a persisted stream with replication 2 keeps a second copy that windows read when the first is lost",
          "[windows][replication]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<std::string>({{"a"}, {"b"}, {"c"}, {"d"}, {"e"}, {"f"}});
  auto sink = h.collect(xs.persist(storage_level::memory_only_ser_2()).window(3s, 1s));
  h.start();
  for (int i = 0; i < 4; ++i)
    h.next_batch();
  // Batches 2000..4000 stay for the window: one partition each, two copies.
  REQUIRE(wait_until([&] { return h.ssc().stored_blocks().blocks == 6; }));
  // Lose every cached partition on the first worker.
  auto& stores = h.ssc().local_stores();
  REQUIRE(stores.size() == 3);
  stores[1]->erase_prefix("c/");
  h.next_batch();
  h.next_batch();
  CHECK(sink->sorted(5000) == strings{"c", "d", "e"});
  CHECK(sink->sorted(6000) == strings{"d", "e", "f"});
}

TEST_CASE("a persisted stream at a disk level with replication 2 reads the copy when the first copy's spill files are damaged",
          "[windows][replication][spill]") {
  for (auto level : {storage_level::memory_and_disk_ser_2(),
                     storage_level::memory_and_disk_2()}) {
    INFO(level.name);
    // A one-byte budget: every cached partition is spilled as it is stored.
    local_harness h{2, std::chrono::seconds{1}, "",
                    [](run_settings& s) { s.block_manager_memory = 1; }};
    auto xs = h.ssc().queue_stream<std::string>({{"a"}, {"b"}, {"c"}, {"d"}, {"e"}, {"f"}});
    auto sink = h.collect(xs.persist(level).window(3s, 1s));
    h.start();
    for (int i = 0; i < 4; ++i)
      h.next_batch();
    auto& stores = h.ssc().local_stores();
    REQUIRE(stores.size() == 3);
    // Batches 2000..4000 stay for the window: one partition each, a copy on
    // each worker, all of them in spill files.
    REQUIRE(wait_until([&] {
      return stores[1]->statistics().disk_blocks == 3
             && stores[2]->statistics().disk_blocks == 3;
    }));
    // Damage every spill file of the first worker.
    auto dir = stores[1]->spill_dir();
    REQUIRE(!dir.empty());
    size_t damaged = 0;
    for (auto& f : std::filesystem::directory_iterator{dir}) {
      std::filesystem::resize_file(f.path(), 20);
      ++damaged;
    }
    CHECK(damaged == 3);
    h.next_batch();
    h.next_batch();
    CHECK(sink->sorted(5000) == strings{"c", "d", "e"});
    CHECK(sink->sorted(6000) == strings{"d", "e", "f"});
  }
}

TEST_CASE("persist takes every storage level and refuses other replication counts",
          "[windows][replication]") {
  local_harness h{1};
  auto xs = h.ssc().queue_stream<std::string>({});
  for (auto level : {storage_level::memory_only(), storage_level::memory_only_2(),
                     storage_level::memory_only_ser(), storage_level::memory_only_ser_2(),
                     storage_level::memory_and_disk(), storage_level::memory_and_disk_2(),
                     storage_level::memory_and_disk_ser(),
                     storage_level::memory_and_disk_ser_2()}) {
    INFO(level.name);
    CHECK_NOTHROW(xs.persist(level));
    CHECK(xs.node()->persisted());
    CHECK(xs.node()->level() == level);
    CHECK(xs.node()->replication() == level.replication);
  }
  auto three = storage_level::memory_and_disk();
  three.replication = 3;
  CHECK_THROWS_WITH(xs.persist(three), Catch::Contains("MEMORY_AND_DISK")
                                         && Catch::Contains("replication must be 1 or 2"));
  auto other = h.ssc().queue_stream<std::string>({});
  CHECK(other.persist().node()->level() == storage_level::memory_only_ser());
}
