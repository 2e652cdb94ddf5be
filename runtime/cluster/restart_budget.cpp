#include "runtime/cluster/restart_budget.hpp"

#include <algorithm>

namespace sluice {

restart_budget::restart_budget(uint32_t max_restarts,
                               std::chrono::milliseconds window,
                               std::chrono::milliseconds base_delay,
                               std::chrono::milliseconds max_delay)
  : max_restarts_(max_restarts),
    window_(window),
    base_delay_(base_delay),
    max_delay_(std::max(base_delay, max_delay)) {
}

std::optional<std::chrono::milliseconds>
restart_budget::on_crash(time_point now) {
  while (!crashes_.empty() && now - crashes_.front() >= window_)
    crashes_.pop_front();
  crashes_.push_back(now);
  if (crashes_.size() > max_restarts_)
    return std::nullopt;
  return backoff_delay(base_delay_, max_delay_, crashes_.size());
}

std::chrono::milliseconds backoff_delay(std::chrono::milliseconds base,
                                        std::chrono::milliseconds max,
                                        size_t failures) {
  // Doubling stops at the cap, so a long streak cannot overflow.
  auto delay = base;
  for (size_t i = 1; i < failures && delay < max; ++i)
    delay *= 2;
  return std::min(delay, max);
}

} // namespace sluice
