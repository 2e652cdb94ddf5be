#include "runtime/recovery/recovery_plan.hpp"

#include <algorithm>

namespace sluice {

time_ms recovery_horizon(const graph& g, time_ms next, time_ms first_batch,
                         const std::map<uint32_t, time_ms>& state_times) {
  time_ms base = next;
  time_ms longest_window = 0;
  for (auto& n : g.nodes()) {
    longest_window = std::max(longest_window, n->window_length());
    if (!n->stateful())
      continue;
    auto i = state_times.find(n->index());
    // A state never checkpointed is rebuilt from the first batch on.
    base = std::min(base, i == state_times.end() ? first_batch
                                                 : i->second + n->slide());
  }
  // A window (and an incremental window's leaving batch) reads batches up
  // to its length before the first batch it computes.
  return std::max(first_batch, base - longest_window);
}

void plan_batches(recovery_plan& plan) {
  auto& meta = plan.meta;
  time_ms last_completed = meta.last_completed_ms;
  time_ms horizon = meta.recovery_horizon_ms;
  plan.last_generated = meta.last_generated_ms;
  for (auto& [t, inputs] : plan.log.tracker.allocations()) {
    plan.last_generated = std::max(plan.last_generated, t);
    if (t <= last_completed) {
      if (horizon >= 0 && t >= horizon)
        plan.recompute.push_back(t);
    } else {
      plan.rerun.push_back(t);
    }
  }
}

} // namespace sluice
