#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "runtime/clock.hpp"

namespace sluice {

/// How the ReceiverTracker restarts receivers that fail.
struct restart_policy {
  /// Delay before the first restart after a failure (receiver.restart-delay).
  std::chrono::milliseconds delay{200};
  /// Each further consecutive failure doubles the delay, up to this.
  std::chrono::milliseconds max_delay{10000};
  /// Consecutive failures tolerated (receiver.max-restarts); one more and
  /// the stream is given up.
  uint32_t max_restarts = 10;
  /// A receiver that ran this long before failing was healthy: its failure
  /// starts a fresh count instead of adding to an old streak.
  std::chrono::milliseconds stable{30000};
};

/// The restart decisions of the ReceiverTracker, apart from its protocol:
/// per stream, the streak of consecutive failures, the node of the last
/// failure, and whether the stream was given up.
///
/// A failure is anything that ends a receiver without a stop being asked
/// for: its actor ended abnormally, its worker was lost, or it could not be
/// started where it was placed. The restart delay grows exponentially with
/// the streak; past the budget the stream is given up (and stays so). A
/// restart avoids the node of the last failure while any other node is live.
///
/// Lifetime: owned by the tracker's state. Concurrency: none (one actor).
/// Times are milliseconds of any monotonic clock, the same for every call.
class receiver_supervision {
public:
  explicit receiver_supervision(restart_policy policy = {});

  struct decision {
    bool give_up = false;
    std::chrono::milliseconds delay{0}; ///< before the restart, if not given up
    uint32_t failures = 0;              ///< consecutive, this one included
  };

  /// A receiver of `stream` is running since `now`.
  void started(uint32_t stream, time_ms now);

  /// The receiver of `stream` failed on `node` at `now`.
  decision failed(uint32_t stream, const std::string& node, time_ms now);

  /// Where a receiver of `stream` should start: the node with the fewest
  /// receivers (`load`: every live node and its receiver count; ties by
  /// name), never the node of the stream's last failure while another node
  /// is live. Empty when `load` is.
  std::optional<std::string> pick(uint32_t stream,
                                  const std::map<std::string, uint32_t>& load) const;

  bool given_up(uint32_t stream) const;

  const restart_policy& policy() const noexcept {
    return policy_;
  }

private:
  struct record {
    uint32_t failures = 0;
    std::optional<time_ms> running_since;
    std::string failed_on;
    bool given_up = false;
  };

  restart_policy policy_;
  std::map<uint32_t, record> streams_;
};

} // namespace sluice
