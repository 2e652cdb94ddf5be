#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/listener.hpp"

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
///
/// A RegisterWorker from a registered node with the same node actor (the
/// same proxy) is a capability refresh: the node restarted its BlockManager
/// or TaskExecutor, and the WorkerChange says `refreshed` with the new
/// handles. A node whose connection died is declared lost and its id
/// remembered (`lost`): the driver re-ran its work and restarted its
/// receivers meanwhile, so when that node comes back (a SIGSTOPped process
/// continued, a network partition healed) its registration is refused with
/// `newIncarnation` and it rejoins under a new id with nothing of its past.
/// A node actor that ended by itself (it crashed, its process lives) is
/// lost too but not remembered: its process restarts it over the same
/// block store, and it registers again under the same id. The set belongs
/// to this driver process; a restarted driver starts empty and adopts the
/// workers (and receivers) that outlived its predecessor.
/// Lifetime: spawned by the driver's streaming_context.
struct membership_state {
  static const char* name;
  uint64_t fingerprint = 0;
  uint32_t graph_size = 0;
  caf::actor tracker;
  caf::actor scheduler;
  std::shared_ptr<listener_bus> listeners; ///< node events
  std::map<std::string, worker_entry> workers;
  std::set<std::string> lost; ///< node ids declared lost over a dead connection
  bool stopping = false;      ///< workers were told to shut down
};

caf::behavior membership(caf::stateful_actor<membership_state>* self,
                         uint64_t fingerprint, uint32_t graph_size,
                         caf::actor tracker, caf::actor scheduler,
                         std::shared_ptr<listener_bus> listeners);

} // namespace sluice
