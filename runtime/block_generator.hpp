#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>

#include "runtime/block.hpp"

namespace sluice {

/// A block cut from a receiver's buffer.
struct cut_block {
  buffer bytes;
  uint64_t records = 0;
  uint64_t raw_bytes = 0; ///< encoded record bytes before framing
};

/// The buffer between a source and its receiver: the source pushes records
/// (from its own thread), the receiver cuts a block every block interval.
///
/// Concurrency: push() and cut() may run on different threads; one mutex
/// guards the buffer. push() blocks while the configured maximum rate
/// (records/s, 0 = unlimited) would be exceeded, which is how backpressure
/// reaches a source without dropping anything. Lifetime: owned by the
/// Receiver actor's state; the source thread is joined before it dies.
class block_generator {
public:
  using clock_type = std::chrono::steady_clock;

  explicit block_generator(uint64_t max_rate = 0);

  /// Appends one record.
  template <class T>
  void push(const T& x) {
    std::unique_lock<std::mutex> guard{mtx_};
    throttle(guard);
    builder_.add(x);
  }

  void push_encoded(std::string_view record);

  /// Moves everything buffered into a block; nullopt when nothing is buffered.
  std::optional<cut_block> cut();

  /// Changes the maximum rate (records/s, 0 = unlimited).
  void set_max_rate(uint64_t rate);

  /// Wakes a push() that waits for rate budget (used when stopping).
  void interrupt();

  uint64_t buffered_records() const;

private:
  void throttle(std::unique_lock<std::mutex>& guard);

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  block_builder builder_;
  uint64_t max_rate_;
  clock_type::time_point window_start_;
  uint64_t window_count_ = 0;
  bool interrupted_ = false;
};

} // namespace sluice
