#include "runtime/cluster/replica_planner.hpp"

#include <algorithm>
#include <map>

namespace sluice {

replica_plan plan_replicas(const std::vector<const block_ref*>& blocks,
                           const std::set<std::string>& live, uint8_t wanted,
                           const std::set<std::string>& in_flight) {
  replica_plan plan;
  std::map<std::string, size_t> given;
  for (auto& node : live)
    given[node] = 0;
  for (auto* ref : blocks) {
    std::vector<std::string> held;
    for (auto& loc : ref->locations)
      if (live.count(loc) > 0
          && std::find(held.begin(), held.end(), loc) == held.end())
        held.push_back(loc);
    if (held.empty()) {
      ++plan.lost;
      continue;
    }
    if (held.size() >= wanted || in_flight.count(ref->id) > 0)
      continue;
    const std::string* target = nullptr;
    for (auto& [node, n] : given)
      if (std::find(held.begin(), held.end(), node) == held.end()
          && (target == nullptr || n < given[*target]))
        target = &node;
    if (target == nullptr) {
      ++plan.degraded;
      continue;
    }
    ++given[*target];
    plan.copies.push_back(block_copy{ref->id, held.front(), *target});
  }
  return plan;
}

} // namespace sluice
