#include "runtime/cluster/lost_state.hpp"

namespace sluice {

std::string lost_state(const graph& g, const cache_registry& cache,
                       const std::function<bool(const std::string&)>& live) {
  std::string lost;
  for (auto& n : g.nodes()) {
    if (!n->stateful())
      continue;
    auto parts = cache.unreadable(n->index(), live);
    if (parts.empty())
      continue;
    if (!lost.empty())
      lost += ", ";
    lost += n->id() + " at " + std::to_string(parts.front().first) + " ms ("
            + std::to_string(parts.size()) + " partition"
            + (parts.size() > 1 ? "s" : "") + ")";
  }
  return lost;
}

} // namespace sluice
