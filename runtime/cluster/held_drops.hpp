#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

/// The drops meant for BlockManagers that are restarting, held until their
/// node announces the next one.
///
/// A worker node restarts a crashed BlockManager over the same block store
/// and then registers again (a WorkerChange `refreshed`). A drop sent to the
/// dead BlockManager is lost, and its blocks would stay in the store that
/// its successor serves. So an actor that drops blocks on workers marks a
/// node restarting when it sees the node's BlockManager end (it monitors
/// them), holds what it would have sent there meanwhile, and sends it to the
/// new BlockManager at the refresh. A node that is lost, or that joins
/// anew, gets none of it: its store went with it.
///
/// `Drop` is what the owner sends (msg<wire::DropBlocks> in the actors).
/// Lifetime: a value owned by one actor, the JobScheduler or the
/// ReceiverTracker, each for the drops it sends. Concurrency: not
/// thread-safe; its owner uses it alone.
template <class Drop>
class held_drops {
public:
  /// The BlockManager of `node` ended: drops for it are held from now on.
  void restarting(const std::string& node) {
    restarting_.insert(node);
  }

  bool is_restarting(const std::string& node) const {
    return restarting_.count(node) > 0;
  }

  /// Nodes whose BlockManager ended and that did not announce the next one.
  const std::set<std::string>& restarting_nodes() const noexcept {
    return restarting_;
  }

  /// Keeps `drop` for `node` and returns true if its BlockManager is
  /// restarting; false leaves `drop` to the caller, to send it now (or to
  /// discard it, for a node it does not know).
  bool hold(const std::string& node, Drop& drop) {
    if (!is_restarting(node))
      return false;
    held_[node].push_back(std::move(drop));
    return true;
  }

  /// `node` announced its next BlockManager: it is no longer restarting.
  /// Returns what was held for it, in order, to be sent to that one.
  std::vector<Drop> refreshed(const std::string& node) {
    restarting_.erase(node);
    std::vector<Drop> result;
    if (auto i = held_.find(node); i != held_.end()) {
      result = std::move(i->second);
      held_.erase(i);
    }
    return result;
  }

  /// `node` was lost or joined anew: nothing held for it is ever sent.
  void forget(const std::string& node) {
    restarting_.erase(node);
    held_.erase(node);
  }

  /// Drops held for `node` (for tests and logs).
  size_t held(const std::string& node) const {
    auto i = held_.find(node);
    return i == held_.end() ? 0 : i->second.size();
  }

private:
  std::set<std::string> restarting_;
  std::map<std::string, std::vector<Drop>> held_;
};

} // namespace sluice
