#include <catch2/catch.hpp>

#include <atomic>
#include <optional>

#include "tests/support/local_harness.hpp"

using namespace sluice;
using namespace sluice::test;

namespace {

using counts = std::vector<std::pair<std::string, int64_t>>;

std::pair<std::string, int64_t> one(std::string w) {
  return {std::move(w), 1};
}

/// Running totals; a key whose batch brings the word "drop" is removed.
std::optional<int64_t> running_total(const std::vector<int64_t>& values,
                                     std::optional<int64_t> state) {
  int64_t sum = state.value_or(0);
  for (auto v : values) {
    if (v < 0)
      return std::nullopt;
    sum += v;
  }
  return sum;
}

} // namespace

TEST_CASE("update_state_by_key carries running totals and removes keys batch by batch",
          "[state]") {
  temp_dir ckpt{"sluice-state"};
  local_harness h{2, std::chrono::seconds{1}, ckpt.path()};
  using kv = std::pair<std::string, int64_t>;
  auto xs = h.ssc().queue_stream<kv>(
    {{{"a", 1}, {"b", 2}}, {{"a", 3}}, {}, {{"b", -1}, {"c", 5}}, {{"a", 1}}});
  auto sink = h.collect(xs.update_state_by_key<int64_t>(running_total, 3));
  h.start();
  for (int i = 0; i < 5; ++i)
    h.next_batch();
  CHECK(sink->sorted(1000) == counts{{"a", 1}, {"b", 2}});
  CHECK(sink->sorted(2000) == counts{{"a", 4}, {"b", 2}});
  // No new values: every key keeps its state.
  CHECK(sink->sorted(3000) == counts{{"a", 4}, {"b", 2}});
  // f returned nullopt for b: b is gone; c enters.
  CHECK(sink->sorted(4000) == counts{{"a", 4}, {"c", 5}});
  CHECK(sink->sorted(5000) == counts{{"a", 5}, {"c", 5}});
}

TEST_CASE("a stateful stream refuses to start without a checkpoint directory",
          "[state]") {
  local_harness h{1};
  auto xs = h.ssc().queue_stream<std::string>({});
  xs.map(one).update_state_by_key<int64_t>(running_total).print();
  auto err = h.ssc().start();
  REQUIRE(err);
  CHECK_THAT(describe(err), Catch::Contains("update_state_by_key")
                              && Catch::Contains("--sluice.checkpoint.dir"));
}

TEST_CASE("state is computed once per batch even when several outputs read it",
          "[state]") {
  temp_dir ckpt{"sluice-state"};
  local_harness h{2, std::chrono::seconds{1}, ckpt.path()};
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto xs = h.ssc().queue_stream<std::string>({{"a", "b", "a"}, {"c"}, {}});
  auto totals = xs.map(one).update_state_by_key<int64_t>(
    [calls](const std::vector<int64_t>& vs, std::optional<int64_t> s) {
      ++*calls;
      return running_total(vs, s);
    },
    2);
  auto first = h.collect(totals);
  auto second = h.collect(totals.map([](std::pair<std::string, int64_t> kv) {
    kv.second *= 10;
    return kv;
  }));
  h.start();
  h.next_batch();
  CHECK(*calls == 2); // a and b, once each
  h.next_batch();
  CHECK(*calls == 5); // a, b, c
  h.next_batch();
  CHECK(*calls == 8);
  CHECK(first->sorted(3000) == counts{{"a", 2}, {"b", 1}, {"c", 1}});
  CHECK(second->sorted(3000) == counts{{"a", 20}, {"b", 10}, {"c", 10}});
}

TEST_CASE("running totals over many keys and batches on three workers are exact",
          "[state]") {
  temp_dir ckpt{"sluice-state"};
  local_harness h{3, std::chrono::seconds{1}, ckpt.path()};
  std::vector<std::vector<std::string>> batches;
  std::map<std::string, int64_t> expected;
  for (int b = 0; b < 20; ++b) {
    std::vector<std::string> batch;
    for (int i = 0; i < 200; ++i) {
      auto w = "w" + std::to_string((i * 7 + b * 13) % 150);
      batch.push_back(w);
      ++expected[w];
    }
    batches.push_back(batch);
  }
  auto xs = h.ssc().queue_stream<std::string>(batches);
  auto sink = h.collect(xs.map(one).update_state_by_key<int64_t>(running_total, 4));
  h.start();
  for (int i = 0; i < 20; ++i)
    h.next_batch();
  CHECK(sink->sorted(20000) == counts(expected.begin(), expected.end()));
}

namespace {

using mapped_t = std::pair<std::string, int64_t>;

/// Counts records per key; "reset" removes the key; a timing-out key maps
/// to (key, -1).
mapped_t count_words_fn(const std::string& key, std::optional<int64_t> value,
                        key_state<int64_t>& state) {
  if (state.is_timing_out())
    return {key, -1};
  if (*value < 0) {
    state.remove();
    return {key, 0};
  }
  auto n = (state.exists() ? state.get() : 0) + *value;
  state.update(n);
  return {key, n};
}

} // namespace

TEST_CASE("map_with_state maps every record with its key's state and snapshots the state",
          "[state][map_with_state]") {
  temp_dir ckpt{"sluice-mws"};
  local_harness h{2, std::chrono::seconds{1}, ckpt.path()};
  using kv = std::pair<std::string, int64_t>;
  auto xs = h.ssc().queue_stream<kv>({{{"a", 1}, {"b", 1}, {"a", 1}}, {{"b", 5}}, {{"a", -1}}, {}});
  state_spec<std::string, int64_t> spec;
  spec.partitions = 3;
  spec.initial = {{"b", 100}};
  auto streams = xs.map_with_state<int64_t>(count_words_fn, spec);
  auto mapped = h.collect(streams.mapped);
  auto snapshots = h.collect(streams.snapshots);
  h.start();
  for (int i = 0; i < 4; ++i)
    h.next_batch();
  CHECK(mapped->sorted(1000) == counts{{"a", 1}, {"a", 2}, {"b", 101}});
  CHECK(snapshots->sorted(1000) == counts{{"a", 2}, {"b", 101}});
  CHECK(mapped->sorted(2000) == counts{{"b", 106}});
  CHECK(snapshots->sorted(2000) == counts{{"a", 2}, {"b", 106}});
  // state.remove() drops the key.
  CHECK(mapped->sorted(3000) == counts{{"a", 0}});
  CHECK(snapshots->sorted(3000) == counts{{"b", 106}});
  CHECK(mapped->sorted(4000).empty());
  CHECK(snapshots->sorted(4000) == counts{{"b", 106}});
}

TEST_CASE("map_with_state times out idle keys after a last call that sees the timeout",
          "[state][map_with_state]") {
  temp_dir ckpt{"sluice-mws"};
  local_harness h{2, std::chrono::seconds{1}, ckpt.path()};
  using kv = std::pair<std::string, int64_t>;
  auto xs = h.ssc().queue_stream<kv>({{{"a", 1}, {"b", 1}}, {{"b", 1}}, {{"b", 1}}, {}, {}});
  state_spec<std::string, int64_t> spec;
  spec.timeout = std::chrono::seconds{2};
  auto streams = xs.map_with_state<int64_t>(count_words_fn, spec);
  auto mapped = h.collect(streams.mapped);
  auto snapshots = h.collect(streams.snapshots);
  h.start();
  for (int i = 0; i < 5; ++i)
    h.next_batch();
  CHECK(snapshots->sorted(2000) == counts{{"a", 1}, {"b", 2}});
  // a had data at 1000 only: idle for 2 s at 3000, it times out.
  CHECK(mapped->sorted(3000) == counts{{"a", -1}, {"b", 3}});
  CHECK(snapshots->sorted(3000) == counts{{"b", 3}});
  CHECK(snapshots->sorted(4000) == counts{{"b", 3}});
  CHECK(mapped->sorted(5000) == counts{{"b", -1}});
  CHECK(snapshots->sorted(5000).empty());
}

TEST_CASE("map_with_state refuses to start without a checkpoint directory",
          "[state][map_with_state]") {
  local_harness h{1};
  auto xs = h.ssc().queue_stream<std::pair<std::string, int64_t>>({});
  xs.map_with_state<int64_t>(count_words_fn).snapshots.print();
  auto err = h.ssc().start();
  REQUIRE(err);
  CHECK_THAT(describe(err), Catch::Contains("map_with_state"));
}

TEST_CASE("a batch whose state failed makes the next batches fail loudly instead of restarting the state",
          "[state]") {
  temp_dir ckpt{"sluice-state"};
  local_harness h{2, std::chrono::seconds{1}, ckpt.path()};
  auto xs = h.ssc().queue_stream<std::string>({{"a"}, {"boom"}, {"a"}});
  auto pairs = xs.map([](std::string w) {
    auto v = w == "boom" ? int64_t{-100} : int64_t{1};
    return std::pair<std::string, int64_t>{std::move(w), v};
  });
  auto sink = h.collect(pairs.update_state_by_key<int64_t>(
    [](const std::vector<int64_t>& vs, std::optional<int64_t> s) {
      for (auto v : vs)
        if (v == -100)
          throw std::runtime_error("the state function failed on boom");
      return running_total(vs, s);
    },
    1));
  h.start();
  auto b1 = h.next_batch();
  CHECK(b1.failed_jobs == 0);
  CHECK(sink->sorted(1000) == counts{{"a", 1}});
  auto b2 = h.next_batch();
  CHECK(b2.failed_jobs > 0);
  CHECK_THAT(b2.error, Catch::Contains("the state function failed on boom"));
  auto b3 = h.next_batch();
  CHECK(b3.failed_jobs > 0);
  CHECK_THAT(b3.error, Catch::Contains("is missing"));
  // Nothing was written from a state that restarted from nothing.
  CHECK_FALSE(sink->has(3000));
}
