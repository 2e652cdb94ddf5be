#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/message.hpp>

namespace sluice {

/// Milliseconds since the epoch: the unit of batch times.
using time_ms = int64_t;

/// The JobGenerator's time source. Batch times are multiples of the batch
/// interval; the generator asks the clock to wake it at each one.
///
/// Implementations are thread-safe: tests advance a manual clock from their
/// own thread while actors read it.
class clock {
public:
  virtual ~clock();

  virtual time_ms now() const = 0;

  /// Sends `content` to `target` once the clock reads `at` or later.
  virtual void schedule(time_ms at, caf::actor target, caf::message content) = 0;
};

/// Wall-clock time; wake-ups go through CAF's timer (delayed messages).
class system_clock : public clock {
public:
  time_ms now() const override;
  void schedule(time_ms at, caf::actor target, caf::message content) override;
};

/// Time that moves only when a test says so; every wake-up that falls due is
/// delivered, in time order, by advance_to().
class manual_clock : public clock {
public:
  explicit manual_clock(time_ms start = 0);

  time_ms now() const override;
  void schedule(time_ms at, caf::actor target, caf::message content) override;

  /// Sets the time to `t` (never backwards) and delivers what fell due.
  void advance_to(time_ms t);

  /// advance_to(now() + d).
  void advance(std::chrono::milliseconds d);

  /// Number of wake-ups waiting (lets a test wait until an actor re-armed).
  size_t pending() const;

private:
  mutable std::mutex mtx_;
  time_ms now_;
  std::multimap<time_ms, std::pair<caf::actor, caf::message>> pending_;
};

} // namespace sluice
