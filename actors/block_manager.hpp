#pragma once

#include <memory>
#include <string>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/block_store.hpp"

namespace sluice {

/// State of a BlockManager: one per node (every worker, and the driver for
/// the batches of queue streams).
///
/// Protocol: PutBlock (+ payload) -> PutBlockAck, stored at the message's
/// storage level (replicas of persisted partitions; unset: memory only);
/// GetBlock -> BlockData (+ payload when found; a block held deserialized
/// is encoded for the reader, a spilled one read back, and a damaged spill
/// file answers errc::corrupt_data); DropBlocks (no answer, deletes spill
/// files); ReplicateBlock (+ the target BlockManager) -> the target's
/// PutBlockAck: a copy of a stored block sent to another node (the tracker
/// restoring a second copy after a node loss). A payload that is not a
/// valid block is refused with errc::corrupt_data and not stored.
/// Lifetime: spawned by its node (worker_node or the driver's context),
/// ends with it. The block_store it serves is shared with the node's
/// TaskExecutor and Receivers for local access.
struct block_manager_state {
  static const char* name;
  std::string node;
  std::shared_ptr<block_store> store;
};

caf::behavior block_manager(caf::stateful_actor<block_manager_state>* self,
                            std::string node, std::shared_ptr<block_store> store);

} // namespace sluice
