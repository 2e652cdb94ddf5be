#pragma once

#include <functional>
#include <string>

#include "runtime/exec/planner.hpp"
#include "runtime/graph.hpp"

namespace sluice {

/// The stateful nodes of `g` whose partitions a later batch may read have
/// no copy left on a node `live` accepts (cache_registry::unreadable), as
/// text for an error ("<node id> at <batch> ms (<n> partitions), ..."), or
/// empty when every such partition still has a live copy.
std::string lost_state(const graph& g, const cache_registry& cache,
                       const std::function<bool(const std::string&)>& live);

} // namespace sluice
