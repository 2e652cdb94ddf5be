#pragma once

// Runs a streaming context in local mode (driver + N in-process workers, the
// real actors and messages) on a manual clock, one batch at a time.

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include <caf/actor_system.hpp>
#include <catch2/catch.hpp>

#include "runtime/streaming_context.hpp"
#include "tests/support/helpers.hpp"

namespace sluice::test {

/// Keeps what a foreach_batch output saw, per batch time.
template <class T>
struct batch_sink {
  std::mutex mtx;
  std::map<time_ms, std::vector<T>> batches;

  /// The records of batch `t`, sorted (partition order is not part of any
  /// operator's contract).
  std::vector<T> sorted(time_ms t) {
    std::lock_guard<std::mutex> guard{mtx};
    auto xs = batches[t];
    std::sort(xs.begin(), xs.end());
    return xs;
  }

  bool has(time_ms t) {
    std::lock_guard<std::mutex> guard{mtx};
    return batches.count(t) > 0;
  }
};

/// Keeps every partition of every batch as the driver got it (foreach_batch),
/// to look at the partitioning itself.
template <class T>
struct partition_sink {
  std::mutex mtx;
  std::map<time_ms, std::vector<std::vector<T>>> batches;

  std::vector<std::vector<T>> at(time_ms t) {
    std::lock_guard<std::mutex> guard{mtx};
    return batches[t];
  }
};

template <class T>
std::shared_ptr<partition_sink<T>> collect_partitions(const dstream<T>& xs) {
  auto sink = std::make_shared<partition_sink<T>>();
  xs.foreach_batch([sink](time_ms t, std::vector<std::vector<T>>& parts) {
    std::lock_guard<std::mutex> guard{sink->mtx};
    sink->batches[t] = parts;
  });
  return sink;
}

/// All records of a batch's partitions, sorted.
template <class T>
std::vector<T> flatten_sorted(const std::vector<std::vector<T>>& parts) {
  std::vector<T> result;
  for (auto& p : parts)
    result.insert(result.end(), p.begin(), p.end());
  std::sort(result.begin(), result.end());
  return result;
}

class local_harness {
public:
  /// `adjust` may change the settings before the context is built (e.g. a
  /// tiny BlockManager memory budget).
  explicit local_harness(uint32_t workers = 2,
                         std::chrono::milliseconds batch_interval = std::chrono::seconds{1},
                         std::string checkpoint_dir = "",
                         const std::function<void(run_settings&)>& adjust = nullptr);
  ~local_harness();

  streaming_context& ssc() {
    return *ssc_;
  }

  manual_clock& clock() {
    return *clock_;
  }

  /// Starts the context; the test fails if it does not start.
  void start();

  /// Moves the clock to the next batch time and waits until that batch
  /// completed (the test fails after a deadline); returns what it did.
  /// `while_running`, if given, runs right after the clock moved, while the
  /// batch is being generated or run (e.g. to kill an actor mid-batch).
  batch_info next_batch(const std::function<void()>& while_running = nullptr);

  time_ms interval() const {
    return interval_;
  }

  /// Collects every batch of `xs` on the driver.
  template <class T>
  std::shared_ptr<batch_sink<T>> collect(const dstream<T>& xs) {
    auto sink = std::make_shared<batch_sink<T>>();
    xs.foreach_batch([sink](time_ms t, std::vector<std::vector<T>>& parts) {
      std::lock_guard<std::mutex> guard{sink->mtx};
      auto& out = sink->batches[t];
      for (auto& p : parts)
        out.insert(out.end(), p.begin(), p.end());
    });
    return sink;
  }

private:
  struct recorder;

  time_ms interval_;
  std::unique_ptr<config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::shared_ptr<manual_clock> clock_;
  std::unique_ptr<streaming_context> ssc_;
  std::shared_ptr<recorder> recorder_;
  time_ms next_ = 0;
};

} // namespace sluice::test
