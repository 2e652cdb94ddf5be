#include "runtime/exec/placement.hpp"

#include <tuple>

namespace sluice {

placement_decision
place_task(const placement_task& task,
           const std::map<std::string, executor_load>& executors,
           placement_task::time_point now,
           std::chrono::milliseconds locality_wait) {
  placement_decision result;
  bool any_free = false;
  bool any_preferred = false;
  // Preferred: most input bytes, then least busy, then fewest launched.
  const std::string* best = nullptr;
  std::tuple<uint64_t, int64_t, int64_t> best_key{0, 0, 0};
  for (auto& [node, bytes] : task.input_bytes) {
    auto e = executors.find(node);
    if (e == executors.end() || node == task.avoid)
      continue;
    any_preferred = true;
    if (!e->second.free())
      continue;
    std::tuple<uint64_t, int64_t, int64_t> key{
      bytes, -int64_t{e->second.busy}, -static_cast<int64_t>(e->second.launched)};
    if (best == nullptr || key > best_key) {
      best = &node;
      best_key = key;
    }
  }
  if (best != nullptr) {
    result.what = placement_decision::kind::run;
    result.node = *best;
    return result;
  }
  for (auto& [node, e] : executors)
    any_free = any_free || e.free();
  if (!any_free)
    return result; // no_slot
  if (any_preferred && locality_wait.count() > 0) {
    auto until = task.pending_since + locality_wait;
    if (now < until) {
      result.what = placement_decision::kind::wait;
      result.until = until;
      return result;
    }
  }
  // Anywhere: the least busy (then fewest launched), the node the task
  // failed on last.
  const std::string* pick = nullptr;
  std::tuple<bool, uint32_t, uint64_t> pick_key{true, 0, 0};
  for (auto& [node, e] : executors) {
    if (!e.free())
      continue;
    std::tuple<bool, uint32_t, uint64_t> key{node == task.avoid, e.busy, e.launched};
    if (pick == nullptr || key < pick_key) {
      pick = &node;
      pick_key = key;
    }
  }
  result.what = placement_decision::kind::run;
  result.node = *pick;
  return result;
}

std::map<std::string, uint64_t>
input_bytes_by_node(const std::vector<leaf_read>& reads) {
  std::map<std::string, uint64_t> result;
  auto add = [&](const block_ref& ref) {
    for (auto& loc : ref.locations)
      result[loc] += ref.bytes;
  };
  for (auto& r : reads) {
    if (r.source == leaf_read::kind::block)
      add(r.block);
    for (auto& ref : r.shuffle)
      add(ref);
  }
  return result;
}

} // namespace sluice
