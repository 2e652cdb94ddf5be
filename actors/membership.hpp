#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

namespace sluice {

/// A registered worker as the driver knows it.
struct worker_entry {
  std::vector<uint32_t> receivers; ///< streams whose receivers run there
  std::string node;
  uint32_t slots = 0;
  caf::actor block_manager;
  caf::actor task_executor;
  caf::actor node_actor;
};

/// State of the driver's membership actor: the one actor a driver publishes.
///
/// Protocol: RegisterWorker (capabilities [BlockManager, TaskExecutor, node
/// actor]) -> RegisterWorkerAck, refused when the worker built a different
/// graph. Accepted workers are monitored; joins and losses go to the
/// ReceiverTracker and JobScheduler as WorkerChange. shutdown_workers_atom
/// (from the context, on a graceful stop) sends Shutdown to every worker.
/// Lifetime: spawned by the driver's streaming_context.
struct membership_state {
  static const char* name;
  uint64_t fingerprint = 0;
  uint32_t graph_size = 0;
  caf::actor tracker;
  caf::actor scheduler;
  std::map<std::string, worker_entry> workers;
};

caf::behavior membership(caf::stateful_actor<membership_state>* self,
                         uint64_t fingerprint, uint32_t graph_size,
                         caf::actor tracker, caf::actor scheduler);

} // namespace sluice
