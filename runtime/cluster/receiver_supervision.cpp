#include "runtime/cluster/receiver_supervision.hpp"

#include "runtime/cluster/restart_budget.hpp"

#include <algorithm>

namespace sluice {

receiver_supervision::receiver_supervision(restart_policy policy)
  : policy_(policy) {
}

void receiver_supervision::started(uint32_t stream, time_ms now) {
  streams_[stream].running_since = now;
}

receiver_supervision::decision
receiver_supervision::failed(uint32_t stream, const std::string& node,
                             time_ms now) {
  auto& r = streams_[stream];
  decision d;
  if (r.given_up) {
    d.give_up = true;
    d.failures = r.failures;
    return d;
  }
  if (r.running_since && now - *r.running_since >= policy_.stable.count())
    r.failures = 0;
  r.running_since.reset();
  r.failed_on = node;
  d.failures = ++r.failures;
  if (r.failures > policy_.max_restarts) {
    r.given_up = true;
    d.give_up = true;
    return d;
  }
  d.delay = backoff_delay(policy_.delay, policy_.max_delay, r.failures);
  return d;
}

std::optional<std::string>
receiver_supervision::pick(uint32_t stream,
                           const std::map<std::string, uint32_t>& load) const {
  std::string avoid;
  if (auto i = streams_.find(stream); i != streams_.end())
    avoid = i->second.failed_on;
  const std::string* best = nullptr;
  uint32_t fewest = UINT32_MAX;
  for (auto& [node, n] : load) {
    if (node == avoid && load.size() > 1)
      continue;
    if (n < fewest) {
      fewest = n;
      best = &node;
    }
  }
  if (best == nullptr)
    return std::nullopt;
  return *best;
}

bool receiver_supervision::given_up(uint32_t stream) const {
  auto i = streams_.find(stream);
  return i != streams_.end() && i->second.given_up;
}

} // namespace sluice
