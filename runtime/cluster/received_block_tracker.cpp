#include "runtime/cluster/received_block_tracker.hpp"

#include <algorithm>

#include "runtime/error.hpp"

namespace sluice {

block_tracker_log::~block_tracker_log() = default;

received_block_tracker::received_block_tracker(std::shared_ptr<block_tracker_log> log)
  : log_(std::move(log)) {
}

received_block_tracker::received_block_tracker(std::shared_ptr<block_tracker_log> log,
                                               const received_block_tracker& replayed)
  : received_block_tracker(replayed) {
  log_ = std::move(log);
}

template <class Self, class F>
void received_block_tracker::for_each_block(Self& self, F f) {
  for (auto& [stream, refs] : self.unallocated_)
    for (auto& ref : refs)
      if (f(ref, std::optional<time_ms>{}))
        return;
  for (auto& [t, inputs] : self.allocations_)
    for (auto& [node, parts] : inputs) {
      if (self.streams_.count(node) == 0)
        continue; // files and queued data: the driver's, not received
      for (auto& p : parts)
        if (!p.is_file && f(p.block, std::optional<time_ms>{t}))
          return;
    }
}

// -- the live path ------------------------------------------------------------

void received_block_tracker::add_stream(uint32_t stream) {
  streams_.insert(stream);
}

caf::expected<bool> received_block_tracker::add(time_ms now, uint32_t stream,
                                                block_ref ref) {
  if (known_.count(ref.id) > 0)
    return false;
  if (log_)
    if (auto err = log_->block_added(now, stream, ref))
      return err;
  apply_added(stream, std::move(ref));
  return true;
}

caf::expected<std::map<uint32_t, std::vector<block_ref>>>
received_block_tracker::allocate(time_ms now, time_ms batch, batch_inputs others) {
  if (allocations_.count(batch) > 0)
    return make_error(errc::refused, "batch " + std::to_string(batch)
                                       + " ms is allocated already");
  for (auto& [node, parts] : others)
    if (streams_.count(node) > 0)
      return make_error(errc::refused, "the other inputs of batch "
                                         + std::to_string(batch)
                                         + " ms name receiver stream "
                                         + std::to_string(node));
  std::map<uint32_t, std::vector<block_ref>> taken;
  auto record = std::move(others);
  for (auto& [stream, refs] : unallocated_) {
    auto& parts = record[stream];
    for (auto& ref : refs) {
      input_partition p;
      p.block = ref;
      p.records = ref.records;
      parts.push_back(std::move(p));
    }
    taken.emplace(stream, refs);
  }
  if (log_)
    if (auto err = log_->batch_allocated(now, batch, record))
      return err;
  apply_allocated(batch, std::move(record));
  return taken;
}

caf::expected<received_block_tracker::drops>
received_block_tracker::release(time_ms now, time_ms batch) {
  drops result;
  auto i = allocations_.find(batch);
  if (i == allocations_.end())
    return result;
  for (auto& [node, parts] : i->second)
    if (streams_.count(node) > 0)
      for (auto& p : parts)
        if (!p.is_file)
          for (auto& loc : p.block.locations)
            result[loc].push_back(p.block.id);
  if (log_)
    if (auto err = log_->batch_cleaned(now, batch))
      return err;
  apply_cleaned(batch);
  return result;
}

// -- the recovery path ----------------------------------------------------------

void received_block_tracker::replay_added(uint32_t stream, block_ref ref) {
  apply_added(stream, std::move(ref));
}

void received_block_tracker::replay_allocated(time_ms batch, batch_inputs inputs) {
  apply_allocated(batch, std::move(inputs));
}

void received_block_tracker::replay_cleaned(time_ms batch) {
  apply_cleaned(batch);
}

// -- applying records -------------------------------------------------------------

void received_block_tracker::apply_added(uint32_t stream, block_ref ref) {
  streams_.insert(stream);
  if (known_.insert(ref.id).second)
    unallocated_[stream].push_back(std::move(ref));
}

void received_block_tracker::apply_allocated(time_ms batch, batch_inputs inputs) {
  // A batch takes the blocks its record lists, not every unallocated one:
  // logs written before the tracker logged allocations itself may hold a
  // block added after the allocation was made and before it was logged.
  // Every listed id is known, in case its blockAdded record went with a
  // segment deleted before this one.
  std::set<std::string> taken;
  for (auto& [node, parts] : inputs)
    for (auto& p : parts)
      if (!p.is_file) {
        taken.insert(p.block.id);
        known_.insert(p.block.id);
      }
  for (auto& [stream, refs] : unallocated_)
    refs.erase(std::remove_if(refs.begin(), refs.end(),
                              [&](const block_ref& r) { return taken.count(r.id) > 0; }),
               refs.end());
  allocations_[batch] = std::move(inputs);
}

void received_block_tracker::apply_cleaned(time_ms batch) {
  auto i = allocations_.find(batch);
  if (i == allocations_.end())
    return;
  for (auto& [node, parts] : i->second)
    for (auto& p : parts)
      if (!p.is_file)
        known_.erase(p.block.id);
  allocations_.erase(i);
}

// -- locations ------------------------------------------------------------------

std::vector<std::string> received_block_tracker::forget_node(const std::string& node) {
  std::vector<std::string> lost;
  for_each_block(*this, [&](block_ref& ref, std::optional<time_ms>) {
    auto& locs = ref.locations;
    auto end = std::remove(locs.begin(), locs.end(), node);
    if (end != locs.end()) {
      locs.erase(end, locs.end());
      if (locs.empty())
        lost.push_back(ref.id);
    }
    return false;
  });
  return lost;
}

caf::expected<received_block_tracker::located_block>
received_block_tracker::add_locations(const std::string& id,
                                      const std::vector<std::string>& nodes) {
  std::optional<located_block> found;
  for_each_block(*this, [&](block_ref& ref, std::optional<time_ms> t) {
    if (ref.id != id)
      return false;
    found = located_block{&ref, t};
    for (auto& node : nodes)
      if (std::find(ref.locations.begin(), ref.locations.end(), node)
          == ref.locations.end()) {
        ref.locations.push_back(node);
        found->added = true;
      }
    return true;
  });
  if (!found)
    return make_error(errc::not_found, "block " + id + " is not tracked (released?)");
  return *found;
}

std::optional<received_block_tracker::located_block>
received_block_tracker::find(const std::string& id) const {
  std::optional<located_block> found;
  for_each_block(*this, [&](const block_ref& ref, std::optional<time_ms> t) {
    if (ref.id != id)
      return false;
    found = located_block{&ref, t};
    return true;
  });
  return found;
}

std::vector<const block_ref*> received_block_tracker::blocks() const {
  std::vector<const block_ref*> result;
  for_each_block(*this, [&](const block_ref& ref, std::optional<time_ms>) {
    result.push_back(&ref);
    return false;
  });
  return result;
}

} // namespace sluice
