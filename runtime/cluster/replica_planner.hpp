#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "runtime/exec/task_context.hpp"

namespace sluice {

/// One copy to make: BlockManager `source` sends block `id` to `target`.
struct block_copy {
  std::string id;
  std::string source;
  std::string target;
};

/// What re-replication can do for a set of blocks.
struct replica_plan {
  std::vector<block_copy> copies;
  /// Blocks left with fewer copies than wanted: no live node lacks them.
  size_t degraded = 0;
  /// Blocks with no live copy at all (only their WAL copy, if any, is left).
  size_t lost = 0;
};

/// Plans the copies that bring every block back to `wanted` live copies:
/// a block with at least one copy on a node of `live` but fewer than
/// `wanted` gets a copy from its first live location to the live node that
/// lacks it and has been given the fewest copies by this plan so far (ties
/// by name), spreading the work. Blocks whose id is in `in_flight` (a copy
/// already under way) are skipped. Locations that are not in `live` count
/// as no copy; the caller decides whether to forget them.
replica_plan plan_replicas(const std::vector<const block_ref*>& blocks,
                           const std::set<std::string>& live, uint8_t wanted,
                           const std::set<std::string>& in_flight);

} // namespace sluice
