#include <catch2/catch.hpp>

#include "runtime/exec/task_context.hpp"
#include "tests/support/local_harness.hpp"

using namespace sluice;
using namespace sluice::test;
using namespace std::chrono_literals;

TEST_CASE("block manager memory stays flat over a thousand batches of windows state and shuffles",
          "[integration][memory]") {
  temp_dir ckpt{"sluice-long"};
  local_harness h{2, std::chrono::seconds{1}, ckpt.path()};
  std::vector<std::vector<std::string>> batches;
  for (int b = 0; b < 1000; ++b) {
    std::vector<std::string> batch;
    for (int i = 0; i < 50; ++i)
      batch.push_back("w" + std::to_string((b * 31 + i * 7) % 40));
    batches.push_back(batch);
  }
  auto xs = h.ssc().queue_stream<std::string>(batches);
  auto pairs = xs.map([](std::string w) { return std::pair<std::string, int64_t>{w, 1}; });
  auto plus = [](int64_t a, int64_t b) { return a + b; };
  auto minus = [](int64_t a, int64_t b) { return a - b; };
  auto totals = h.collect(pairs.update_state_by_key<int64_t>(
    [](const std::vector<int64_t>& vs, std::optional<int64_t> s) {
      auto sum = s.value_or(0);
      for (auto v : vs)
        sum += v;
      return std::optional<int64_t>{sum};
    },
    3));
  auto windowed = h.collect(pairs.reduce_by_key_and_window(plus, 6s, 2s, 3));
  auto incremental = h.collect(pairs.reduce_by_key_and_window(
    plus, minus, 6s, 2s, 3,
    [](const std::pair<std::string, int64_t>& kv) { return kv.second != 0; }));
  h.start();
  size_t peak_blocks_early = 0;
  size_t peak_blocks_late = 0;
  uint64_t peak_bytes_early = 0;
  uint64_t peak_bytes_late = 0;
  for (int i = 1; i <= 1000; ++i) {
    auto done = h.next_batch();
    // A completed batch's shuffle blocks are dropped by messages that may
    // still be on their way to the BlockManagers when the listener hears of
    // the completion: sample once they arrived, or a loaded machine counts
    // one batch's shuffle output as retained data.
    auto prefix = shuffle_prefix(done.batch_time);
    REQUIRE(wait_until([&] {
      for (auto& store : h.ssc().local_stores())
        for (auto& id : store->ids())
          if (id.compare(0, prefix.size(), prefix) == 0)
            return false;
      return true;
    }));
    auto stats = h.ssc().stored_blocks();
    if (i > 50 && i <= 150) {
      peak_blocks_early = std::max(peak_blocks_early, stats.blocks);
      peak_bytes_early = std::max(peak_bytes_early, stats.bytes);
    } else if (i > 900) {
      peak_blocks_late = std::max(peak_blocks_late, stats.blocks);
      peak_bytes_late = std::max(peak_bytes_late, stats.bytes);
    }
  }
  INFO("early: " << peak_blocks_early << " blocks, " << peak_bytes_early
                 << " bytes; late: " << peak_blocks_late << " blocks, "
                 << peak_bytes_late << " bytes");
  // Retained data depends on the windows' lengths, not on how long it ran.
  CHECK(peak_blocks_late <= peak_blocks_early + 8);
  CHECK(peak_bytes_late <= peak_bytes_early + peak_bytes_early / 10);
  CHECK(peak_blocks_late < 200);
  // And the results are still right at the end: 1000 batches of 50 words.
  int64_t sum = 0;
  for (auto& [w, n] : totals->sorted(1000000))
    sum += n;
  CHECK(sum == 50000);
  CHECK(windowed->sorted(1000000) == incremental->sorted(1000000));
}
