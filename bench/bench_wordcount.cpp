// bench_wordcount: word count in local mode over the generator, as fast as
// the engine takes it; prints per-batch delays and overall throughput.
// Asserts nothing: it is how a change sees its cost.
//
//   bench_wordcount [--local=2] [--rate=LINES_PER_S] [--duration=10]
//                   [--batch-interval=1s] [--sluice.*=...]
//
// --rate=0 generates as fast as the receiver takes records; the throughput
// figures then describe the engine, and the delays show whether it keeps up.

#include <cinttypes>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "apps/wordcount_graph.hpp"
#include "runtime/log.hpp"

namespace {

struct collector : sluice::listener {
  std::mutex mtx;
  std::vector<sluice::batch_info> batches;
  void on_batch_completed(const sluice::batch_info& x) override {
    std::lock_guard<std::mutex> guard{mtx};
    batches.push_back(x);
  }
};

} // namespace

int main(int argc, char** argv) {
  int64_t rate = 0;
  auto stats = std::make_shared<collector>();
  std::vector<std::string> args{argv, argv + argc};
  bool has_duration = false;
  for (auto& a : args)
    has_duration |= a.rfind("--duration=", 0) == 0;
  if (!has_duration)
    args.push_back("--duration=10");
  std::vector<char*> argv2;
  for (auto& a : args)
    argv2.push_back(a.data());
  auto start = std::chrono::steady_clock::now();
  auto rc = sluice::run(
    static_cast<int>(argv2.size()), argv2.data(),
    [&](sluice::config& cfg) {
      cfg.app_options().add(rate, "rate",
                            "generated lines/s per receiver (0: unlimited)");
    },
    [&](sluice::streaming_context& ssc) {
      if (rate < 0)
        throw std::invalid_argument("--rate must not be negative");
      ssc.add_listener(stats);
      auto lines = ssc.generator_stream(static_cast<uint64_t>(rate));
      // Count without writing files: the bench measures the engine, not disk.
      sluice::apps::word_counts(lines).foreach_partition(
        [](const sluice::output_partition&, auto&) {});
    });
  auto wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::lock_guard<std::mutex> guard{stats->mtx};
  uint64_t records = 0, bytes = 0;
  int64_t processing = 0, max_total = 0, sum_sched = 0;
  std::printf("%-14s %10s %12s %10s %10s %10s\n", "batch_ms", "records", "bytes",
              "sched_ms", "proc_ms", "total_ms");
  for (auto& b : stats->batches) {
    std::printf("%-14" PRId64 " %10" PRIu64 " %12" PRIu64 " %10" PRId64
                " %10" PRId64 " %10" PRId64 "\n",
                b.batch_time, b.records, b.bytes, b.scheduling_delay(),
                b.processing_time(), b.total_delay());
    records += b.records;
    bytes += b.bytes;
    processing += b.processing_time();
    sum_sched += b.scheduling_delay();
    max_total = std::max(max_total, b.total_delay());
  }
  auto n = stats->batches.size();
  std::printf("\nbatches: %zu, records: %" PRIu64 ", bytes: %" PRIu64
              ", wall: %.1f s\n",
              n, records, bytes, wall);
  if (processing > 0)
    std::printf("processing throughput: %.0f records/s, %.1f MB/s "
                "(records and block bytes per second of batch processing time)\n",
                records * 1000.0 / processing, bytes / 1000.0 / processing);
  std::printf("end-to-end: %.0f records/s over the run; mean scheduling "
              "delay %.1f ms, max total delay %" PRId64 " ms\n",
              wall > 0 ? records / wall : 0.0,
              n > 0 ? static_cast<double>(sum_sched) / n : 0.0, max_total);
  return rc;
}
