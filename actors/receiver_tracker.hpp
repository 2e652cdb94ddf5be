#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "messages/schemas.hpp"
#include "runtime/clock.hpp"
#include "runtime/cluster/held_drops.hpp"
#include "runtime/cluster/received_block_tracker.hpp"
#include "runtime/cluster/receiver_supervision.hpp"
#include "runtime/config.hpp"
#include "runtime/exec/task_spec.hpp"
#include "runtime/graph.hpp"
#include "runtime/listener.hpp"
#include "runtime/recovery/driver_log.hpp"
#include "runtime/recovery/recovery_plan.hpp"

namespace sluice {

/// A worker as the tracker sees it.
struct tracked_worker {
  caf::actor block_manager;
  caf::actor node_actor;
  uint32_t receivers = 0;
};

/// A receiver-based stream and where its receiver runs.
struct tracked_stream {
  std::string node;   ///< empty while not placed
  caf::actor receiver; ///< set once the worker confirmed the start
  bool restart_pending = false; ///< a restart waits for its back-off
  bool failed = false;   ///< restart budget spent: never placed again
  bool finished = false; ///< its source ended by itself: not restarted
};

/// State of the ReceiverTracker (driver).
///
/// The received blocks are a received_block_tracker's
/// (runtime/cluster/received_block_tracker), the one owner of that state
/// and of its driver log records: AddBlock adds a block (logged before it
/// is acknowledged; a known id, re-sent after a driver restart, is
/// acknowledged without being counted again); AllocateBlocks(t) gives batch
/// t every unallocated block and logs the batch's complete inputs (its
/// blocks and the generator's other inputs, sent with the request) as one
/// record before it answers (BlockAllocation); ReleaseBatch(t) logs the
/// cleanup, then drops the batch's blocks from their BlockManagers. A
/// change the log refuses is refused (the requester gets the error); a
/// refused cleanup is tried again at the next release. Drops for a node
/// whose BlockManager ended (the tracker monitors them) wait for its next
/// one (WorkerChange `refreshed`; runtime/cluster/held_drops). After a
/// recovery the tracker continues from the replayed log's blocks, adopts
/// the receivers that kept running on re-registering workers, and places
/// the others only after a grace period, so a stream never gets a second
/// receiver while its first is still reconnecting.
///
/// Places one receiver per receiver-based input on the worker with the
/// fewest receivers and supervises it: each receiver is monitored, and one
/// that ends abnormally, whose worker is lost or that cannot start is
/// restarted on another live worker (never the one it just failed on while
/// another is live) after receiver.restart-delay, doubled with every
/// consecutive failure; past receiver.max-restarts the stream is reported
/// failed (log and listener event) and the others go on
/// (runtime/cluster/receiver_supervision). Receivers learn where their
/// blocks' second copies may go from ReceiverPeers, sent at their start and
/// whenever workers join or leave. When a worker is lost, the tracked blocks
/// it held a copy of are copied again from a surviving copy to another live
/// worker (ReplicateBlock), and the scheduler learns the new locations of
/// allocated ones (BlockLocations); blocks no live worker can take keep one
/// copy until a worker joins, and the log says replication degraded.
///
/// stop_receivers_atom stops every receiver gracefully and answers once all
/// flushed their last block.
/// Lifetime: spawned by the driver's streaming_context.
struct receiver_tracker_state {
  static const char* name;
  graph* g = nullptr;
  run_settings settings;
  std::shared_ptr<listener_bus> listeners;
  std::map<std::string, tracked_worker> workers;
  std::map<uint32_t, tracked_stream> streams;
  /// Received blocks, allocations and their driver log records.
  received_block_tracker blocks;
  /// Released batches whose cleanup the log refused: released again later.
  std::set<time_ms> release_pending;
  /// Drops for nodes whose BlockManager is restarting.
  held_drops<msg<wire::DropBlocks>> drops;
  bool stopping = false;
  std::shared_ptr<clock> clk;               ///< stamps the log's records
  bool placement_open = true;               ///< false during a recovery grace
  caf::actor scheduler;                     ///< told of new block locations
  receiver_supervision supervision;
  uint8_t replication = 1;                  ///< copies of each received block
  std::set<std::string> replicating;        ///< block ids being copied
  bool degraded = false;  ///< blocks were left with one copy: retry on a join
};

caf::behavior receiver_tracker(caf::stateful_actor<receiver_tracker_state>* self,
                               graph* g, run_settings settings,
                               std::shared_ptr<listener_bus> listeners,
                               std::shared_ptr<clock> clk,
                               caf::actor scheduler,
                               std::shared_ptr<driver_log> log,
                               std::shared_ptr<const recovery_plan> plan);

} // namespace sluice
