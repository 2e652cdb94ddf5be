// Every DStream operator, batch by batch, on a real local-mode cluster
// (driver + 2 in-process workers, the real actors and Cap'n Proto messages)
// driven by a manual clock: h.next_batch() runs exactly one batch, so each
// batch's output is compared with the exact expected records.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "apps/wordcount_graph.hpp"
#include "runtime/sinks/text_files.hpp"
#include "tests/support/local_harness.hpp"

using namespace sluice;
using namespace sluice::test;

namespace fs = std::filesystem;

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

namespace {

using ints = std::vector<int64_t>;
using strings = std::vector<std::string>;
using counts = std::vector<std::pair<std::string, int64_t>>;

int64_t add(int64_t a, int64_t b) {
  return a + b;
}

std::pair<std::string, int64_t> one(std::string w) {
  return {std::move(w), 1};
}

template <class T>
std::vector<T> sorted(std::vector<T> xs) {
  std::sort(xs.begin(), xs.end());
  return xs;
}

/// Redirects the process's stdout (fd 1) into a file until finish().
class stdout_capture {
public:
  explicit stdout_capture(std::string path) : path_(std::move(path)) {
    std::fflush(stdout);
    saved_ = ::dup(1);
    auto fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::close(fd);
  }

  ~stdout_capture() {
    restore();
  }

  std::string finish() {
    restore();
    return read_file(path_);
  }

private:
  void restore() {
    if (saved_ < 0)
      return;
    std::fflush(stdout);
    ::dup2(saved_, 1);
    ::close(saved_);
    saved_ = -1;
  }

  std::string path_;
  int saved_ = -1;
};

std::string print_header(time_ms t) {
  return "-------------------------------------------\nTime: " + std::to_string(t)
         + " ms\n-------------------------------------------\n";
}

/// Names of the entries of a directory, sorted.
std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> result;
  for (auto& e : fs::directory_iterator(dir))
    result.push_back(e.path().filename().string());
  std::sort(result.begin(), result.end());
  return result;
}

/// The lines of a file, sorted.
std::vector<std::string> sorted_lines(const std::string& path) {
  std::vector<std::string> result;
  std::istringstream in{read_file(path)};
  std::string line;
  while (std::getline(in, line))
    result.push_back(line);
  std::sort(result.begin(), result.end());
  return result;
}

} // namespace

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

// -- output operations -----------------------------------------------------------

TEST_CASE("foreach_partition runs on workers with the id of each output partition",
          "[operators]") {
  struct call {
    output_partition id;
    std::vector<int64_t> records;
  };
  struct calls_t {
    std::mutex mtx;
    std::vector<call> calls;
  };
  local_harness h{2};
  auto xs = h.ssc().queue_stream<int64_t>({{1, 2, 3, 4, 5}, {}, {6}});
  auto spread = xs.repartition(3);
  auto unnamed_calls = std::make_shared<calls_t>();
  auto named_calls = std::make_shared<calls_t>();
  auto record = [](std::shared_ptr<calls_t> sink) {
    return [sink](const output_partition& id, std::vector<int64_t>& records) {
      std::lock_guard<std::mutex> guard{sink->mtx};
      sink->calls.push_back(call{id, records});
    };
  };
  auto unnamed = spread.foreach_partition(record(unnamed_calls));
  auto named = xs.foreach_partition(record(named_calls));
  named.name("my-output");
  auto unnamed_id = unnamed.node()->id();
  CHECK(unnamed_id == "foreach_partition-" + std::to_string(unnamed.node()->index()));
  CHECK(named.node()->id() == "my-output");
  h.start();
  auto take = [](std::shared_ptr<calls_t> sink) {
    std::lock_guard<std::mutex> guard{sink->mtx};
    auto result = std::move(sink->calls);
    sink->calls.clear();
    std::sort(result.begin(), result.end(), [](const call& a, const call& b) {
      return a.id.partition < b.id.partition;
    });
    return result;
  };
  for (time_ms t = 1000; t <= 3000; t += 1000) {
    h.next_batch();
    INFO("batch " << t);
    auto u = take(unnamed_calls);
    REQUIRE(u.size() == 3);
    std::vector<int64_t> all;
    for (uint32_t p = 0; p < 3; ++p) {
      CHECK(u[p].id.batch_time == t);
      CHECK(u[p].id.output_id == unnamed_id);
      CHECK(u[p].id.partition == p);
      CHECK(u[p].id.partitions == 3);
      CHECK(u[p].id.attempt >= 1);
      all.insert(all.end(), u[p].records.begin(), u[p].records.end());
    }
    auto expected = t == 1000 ? ints{1, 2, 3, 4, 5} : t == 2000 ? ints{} : ints{6};
    CHECK(sorted(all) == expected);
    auto n = take(named_calls);
    // One queued block, one partition (also for the queued empty batch).
    REQUIRE(n.size() == 1);
    CHECK(n[0].id.batch_time == t);
    CHECK(n[0].id.output_id == "my-output");
    CHECK(n[0].id.partition == 0);
    CHECK(n[0].id.partitions == 1);
    CHECK(sorted(n[0].records) == expected);
  }
}

TEST_CASE("print writes the batch header and the first records to stdout",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto xs = ssc.queue_stream<std::string>(
    {{"a", "b", "c", "d", "e"}, {"x", "y"}, {}, {"p", "q", "r"}});
  xs.print(3);
  temp_dir dir{"sluice-print"};
  h.start();
  auto run_captured = [&](const std::string& name) {
    stdout_capture capture{dir / name};
    h.next_batch();
    return capture.finish();
  };
  // One partition in queue order: the first three, then "..." for the rest.
  CHECK(run_captured("1") == print_header(1000) + "a\nb\nc\n...\n\n");
  CHECK(run_captured("2") == print_header(2000) + "x\ny\n\n");
  CHECK(run_captured("3") == print_header(3000) + "\n");
  // Exactly n records: no "...".
  CHECK(run_captured("4") == print_header(4000) + "p\nq\nr\n\n");
}

TEST_CASE("print formats pairs and stops after n records across partitions",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto a = ssc.queue_stream<std::string>({{"a1", "a2"}});
  auto b = ssc.queue_stream<std::string>({{"b1", "b2"}});
  a.union_with(b).print(3);
  auto words = ssc.queue_stream<std::string>({{}, {"w", "w", "w"}});
  words.map(one).reduce_by_key(add).print();
  temp_dir dir{"sluice-print"};
  h.start();
  std::string out;
  {
    stdout_capture capture{dir / "1"};
    h.next_batch();
    out = capture.finish();
  }
  // Two outputs printed this batch; the union's block has 3 of its 4 records.
  auto header = print_header(1000);
  auto first = out.find(header);
  REQUIRE(first != std::string::npos);
  auto second = out.find(header, first + header.size());
  REQUIRE(second != std::string::npos);
  CHECK(out.find(header, second + header.size()) == std::string::npos);
  std::vector<std::string> blocks{out.substr(first, second - first), out.substr(second)};
  std::sort(blocks.begin(), blocks.end(), [](auto& x, auto& y) { return x.size() < y.size(); });
  CHECK(blocks[0] == header + "\n"); // the empty word count
  auto& shown = blocks[1];
  REQUIRE(shown.size() > header.size());
  std::vector<std::string> lines;
  std::istringstream in{shown.substr(header.size())};
  std::string line;
  while (std::getline(in, line))
    lines.push_back(line);
  REQUIRE(lines.size() == 5);
  CHECK(lines[3] == "...");
  CHECK(lines[4].empty());
  std::set<std::string> records{lines[0], lines[1], lines[2]};
  CHECK(records.size() == 3);
  for (auto& r : records)
    CHECK((r == "a1" || r == "a2" || r == "b1" || r == "b2"));
  {
    stdout_capture capture{dir / "2"};
    h.next_batch();
    out = capture.finish();
  }
  CHECK(out.find(print_header(2000) + "w\t3\n\n") != std::string::npos);
}

TEST_CASE("save_as_text_files writes one part file per partition and batch",
          "[operators]") {
  temp_dir dir{"sluice-save"};
  local_harness h{2};
  auto& ssc = h.ssc();
  auto xs = ssc.queue_stream<std::string>({{"one", "two", "three", "four", "five"}, {}, {"x"}});
  xs.repartition(3).save_as_text_files(dir / "out");
  xs.save_as_text_files(dir / "single", "txt");
  xs.map(one).reduce_by_key(add, 2).save_as_text_files_in(dir / "counts");
  h.start();
  h.next_batch();
  auto parts = std::vector<std::string>{"part-00000", "part-00001", "part-00002"};
  REQUIRE(fs::is_directory(dir / "out-1000"));
  CHECK(list_dir(dir / "out-1000") == parts);
  std::vector<std::string> lines;
  for (auto& p : parts) {
    auto ls = sorted_lines(dir / ("out-1000/" + p));
    CHECK(!ls.empty());
    lines.insert(lines.end(), ls.begin(), ls.end());
  }
  CHECK(sorted(lines) == strings{"five", "four", "one", "three", "two"});
  // Every record is one line: the files end with a newline.
  for (auto& p : parts) {
    auto content = read_file(dir / ("out-1000/" + p));
    CHECK(content.back() == '\n');
  }
  CHECK(list_dir(dir / "single-1000.txt") == strings{"part-00000"});
  CHECK(sorted_lines(dir / "single-1000.txt/part-00000")
        == strings{"five", "four", "one", "three", "two"});
  CHECK(list_dir(dir / "counts/1000") == strings{"part-00000", "part-00001"});
  auto count_lines = sorted_lines(dir / "counts/1000/part-00000");
  auto more = sorted_lines(dir / "counts/1000/part-00001");
  count_lines.insert(count_lines.end(), more.begin(), more.end());
  CHECK(sorted(count_lines)
        == strings{"five\t1", "four\t1", "one\t1", "three\t1", "two\t1"});
  h.next_batch();
  // The empty batch: every partition still has its (empty) file.
  CHECK(list_dir(dir / "out-2000") == parts);
  for (auto& p : parts)
    CHECK(read_file(dir / ("out-2000/" + p)).empty());
  CHECK(list_dir(dir / "single-2000.txt") == strings{"part-00000"});
  CHECK(read_file(dir / "single-2000.txt/part-00000").empty());
  CHECK(list_dir(dir / "counts/2000") == strings{"part-00000", "part-00001"});
  h.next_batch();
  lines.clear();
  for (auto& p : parts) {
    auto ls = sorted_lines(dir / ("out-3000/" + p));
    lines.insert(lines.end(), ls.begin(), ls.end());
  }
  CHECK(lines == strings{"x"});
  // Nothing else was left behind: no temporary files anywhere.
  std::vector<std::string> all;
  for (auto& e : fs::recursive_directory_iterator(dir.path()))
    if (e.is_regular_file())
      all.push_back(fs::relative(e.path(), dir.path()).string());
  std::sort(all.begin(), all.end());
  strings expected_files;
  for (auto t : {"1000", "2000", "3000"}) {
    for (auto& p : parts)
      expected_files.push_back(std::string{"out-"} + t + "/" + p);
    expected_files.push_back(std::string{"single-"} + t + ".txt/part-00000");
    expected_files.push_back(std::string{"counts/"} + t + "/part-00000");
    expected_files.push_back(std::string{"counts/"} + t + "/part-00001");
  }
  std::sort(expected_files.begin(), expected_files.end());
  CHECK(all == expected_files);
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

// -- building the graph ------------------------------------------------------------

TEST_CASE("naming two operators with the same id throws naming the id",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto xs = ssc.queue_stream<int64_t>({{1}});
  auto m = xs.map([](int64_t x) { return x + 1; });
  m.name("dup-id");
  CHECK(m.node()->id() == "dup-id");
  auto other = xs.filter([](const int64_t&) { return true; });
  try {
    other.name("dup-id");
    FAIL("a duplicate id was accepted");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), Catch::Contains("dup-id"));
  }
  // The refused rename left the operator's id alone.
  CHECK(other.node()->id() == "filter-" + std::to_string(other.node()->index()));
  // Renaming to its own id is fine; outputs share the id space.
  CHECK_NOTHROW(m.name("dup-id"));
  auto out = m.foreach_batch([](time_ms, std::vector<std::vector<int64_t>>&) {});
  CHECK_THROWS_AS(out.name("dup-id"), std::invalid_argument);
  CHECK_THROWS_AS(out.name(""), std::invalid_argument);
  out.name("out-id");
  CHECK_THROWS_WITH(other.name("out-id"), Catch::Contains("out-id"));
  h.start();
  // No renames once the graph runs.
  CHECK_THROWS_AS(other.name("late-id"), std::invalid_argument);
}

TEST_CASE("repartition and keyed shuffles refuse a partition count of 0",
          "[operators]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<int64_t>({{1}});
  auto nodes_before = h.ssc().graph().size();
  CHECK_THROWS_AS(xs.repartition(0), std::invalid_argument);
  CHECK_THROWS_WITH(xs.repartition(0), Catch::Contains("repartition"));
  CHECK_THROWS_AS(xs.repartition(100001), std::invalid_argument);
  CHECK(h.ssc().graph().size() == nodes_before);
}

TEST_CASE("starting a context whose graph has no output fails and says why",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto xs = ssc.queue_stream<int64_t>({{1, 2}, {3}});
  auto doubled = xs.map([](int64_t x) { return x * 2; });
  auto err = ssc.start();
  REQUIRE(err);
  CHECK(err.code() == static_cast<uint8_t>(errc::bad_graph));
  CHECK_THAT(describe(err), Catch::Contains("output"));
  // Nothing was started: adding an output and starting again works.
  auto sink = h.collect(doubled);
  h.start();
  h.next_batch();
  CHECK(sink->sorted(1000) == ints{2, 4});
}

TEST_CASE("remember keeps the input blocks of recent batches and drops older ones",
          "[operators][remember]") {
  local_harness h{2};
  std::vector<std::vector<std::string>> batches(10, std::vector<std::string>{"x"});
  auto xs = h.ssc().queue_stream<std::string>(batches);
  h.collect(xs);
  h.ssc().remember(std::chrono::seconds{3});
  h.start();
  for (int i = 0; i < 8; ++i)
    h.next_batch();
  // One queued block per batch; batches 6, 7 and 8 are within 3 s of 8.
  CHECK(wait_until([&] { return h.ssc().stored_blocks().blocks == 3; }));
  CHECK_THROWS_AS(h.ssc().remember(std::chrono::seconds{1}), std::logic_error);
}

TEST_CASE("without remember a batch's input blocks are dropped when it completes",
          "[operators][remember]") {
  local_harness h{2};
  std::vector<std::vector<std::string>> batches(5, std::vector<std::string>{"x"});
  auto xs = h.ssc().queue_stream<std::string>(batches);
  h.collect(xs);
  h.start();
  for (int i = 0; i < 5; ++i)
    h.next_batch();
  CHECK(wait_until([&] { return h.ssc().stored_blocks().blocks == 0; }));
}
