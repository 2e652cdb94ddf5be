#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/config.hpp"
#include "runtime/exec/task_spec.hpp"
#include "runtime/graph.hpp"
#include "runtime/listener.hpp"

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
};

/// State of the ReceiverTracker (driver).
///
/// Places one receiver per receiver-based input on the worker with the
/// fewest receivers, restarts it elsewhere after receiver.restart-delay when
/// its worker is lost, and owns the received-block tracker: AddBlock appends
/// to a stream's unallocated blocks; AllocateBlocks(t) gives batch t every
/// unallocated block (BlockAllocation); ReleaseBatch(t) drops batch t's
/// blocks from their BlockManagers. stop_receivers_atom stops every receiver
/// gracefully and answers once all flushed their last block.
/// Lifetime: spawned by the driver's streaming_context.
struct receiver_tracker_state {
  static const char* name;
  graph* g = nullptr;
  run_settings settings;
  std::shared_ptr<listener_bus> listeners;
  std::map<std::string, tracked_worker> workers;
  std::map<uint32_t, tracked_stream> streams;
  std::map<uint32_t, std::vector<block_ref>> unallocated;
  std::map<time_ms, std::map<uint32_t, std::vector<block_ref>>> allocations;
  bool stopping = false;
};

caf::behavior receiver_tracker(caf::stateful_actor<receiver_tracker_state>* self,
                               graph* g, run_settings settings,
                               std::shared_ptr<listener_bus> listeners);

} // namespace sluice
