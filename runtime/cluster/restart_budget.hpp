#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>

namespace sluice {

/// The delay before the restart that follows `failures` consecutive
/// failures (at least 1): `base` doubled for each failure after the first,
/// capped at `max`. Shared by every supervisor in sluice.
std::chrono::milliseconds backoff_delay(std::chrono::milliseconds base,
                                        std::chrono::milliseconds max,
                                        size_t failures);

/// How often a supervisor restarts a crashed actor, and after how long.
///
/// Each crash is recorded; while at most `max_restarts` crashes fall within
/// the last `window`, the crash earns a restart after a delay that starts
/// at `base_delay` and doubles with every further crash in the window (up
/// to `max_delay`), so a child that crashes over and over slows down before
/// it gives up instead of spinning. One crash more than the budget within
/// the window spends it: the supervisor stops restarting and fails itself,
/// handing the problem one level up (Erlang's restart intensity).
///
/// Lifetime: a value owned by the supervisor, one per supervised child (or
/// role). Concurrency: not thread-safe; the owning actor uses it alone.
class restart_budget {
public:
  using time_point = std::chrono::steady_clock::time_point;

  restart_budget(uint32_t max_restarts, std::chrono::milliseconds window,
                 std::chrono::milliseconds base_delay,
                 std::chrono::milliseconds max_delay);

  /// Records a crash at `now`. Returns the delay before the restart, or
  /// nothing once more than max_restarts crashes fall within the window.
  std::optional<std::chrono::milliseconds> on_crash(time_point now);

  /// Crashes within the window, as of the last on_crash.
  size_t recent() const noexcept {
    return crashes_.size();
  }

  uint32_t max_restarts() const noexcept {
    return max_restarts_;
  }

  std::chrono::milliseconds window() const noexcept {
    return window_;
  }

private:
  uint32_t max_restarts_;
  std::chrono::milliseconds window_;
  std::chrono::milliseconds base_delay_;
  std::chrono::milliseconds max_delay_;
  std::deque<time_point> crashes_;
};

} // namespace sluice
