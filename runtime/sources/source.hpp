#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/block_generator.hpp"

namespace sluice {

/// Lets a source thread wait (retry pacing, polling) and still stop at once.
///
/// Concurrency: request_stop() from any thread; the source thread checks
/// stop_requested() and waits with wait_for(). Lifetime: owned by the
/// Receiver actor, outlives the source thread.
class stop_signal {
public:
  void request_stop();

  bool stop_requested() const noexcept {
    return stopped_.load(std::memory_order_acquire);
  }

  /// Waits up to `d`; returns true if stop was requested.
  bool wait_for(std::chrono::milliseconds d);

private:
  std::atomic<bool> stopped_{false};
  std::mutex mtx_;
  std::condition_variable cv_;
};

/// How a source tells its receiver what happens to it. Called from the source
/// thread; implementations must be thread-safe.
class source_reporter {
public:
  virtual ~source_reporter();

  /// The source is connected / reading (e.g. "connected to 127.0.0.1:9999").
  virtual void started(const std::string& what) = 0;

  /// Something failed; the source keeps retrying (e.g. "cannot connect to
  /// 127.0.0.1:9 (Connection refused), retrying in 200ms").
  virtual void error(const std::string& what) = 0;
};

/// A receiver-based source: runs on a dedicated thread owned by its Receiver
/// actor, pushes records into the receiver's block generator, and returns
/// once `stop` is requested (within ~100 ms). It never throws: failures are
/// reported and retried.
class source {
public:
  virtual ~source();

  /// Human-readable description, e.g. "socket 127.0.0.1:9999".
  virtual std::string describe() const = 0;

  virtual void run(block_generator& out, stop_signal& stop,
                   source_reporter& report) = 0;
};

using source_ptr = std::unique_ptr<source>;

/// socketTextStream: a TCP client reading '\n'-terminated lines (a trailing
/// '\r' is dropped) from host:port. A refused or lost connection is reported
/// and retried with a backoff from 100 ms up to 2 s; a line cut by a closed
/// connection is delivered as it is.
source_ptr make_socket_source(std::string host, uint16_t port);

/// Generated text at `rate` records/s (0: as fast as the receiver takes
/// them): lines of 1..12 words drawn from a fixed vocabulary by a PRNG
/// seeded with `seed`, so a run is repeatable.
source_ptr make_generator_source(uint64_t rate, uint64_t seed);

} // namespace sluice
