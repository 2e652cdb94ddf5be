#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "messages/schemas.hpp"
#include "runtime/block_store.hpp"
#include "runtime/config.hpp"
#include "runtime/graph.hpp"
#include "runtime/cluster/node_identity.hpp"
#include "runtime/cluster/restart_budget.hpp"

namespace sluice {

/// Asks a worker node for its current children: answers a vector holding
/// its BlockManager and its TaskExecutor (either invalid while it restarts).
/// Local inspection for tests and tools; never part of the protocol.
using node_children_atom = caf::atom_constant<caf::atom("nodekids")>;

/// Restart budget of each child of a worker node: a child that ended more
/// than this often within `child_restart_window` shuts the node down.
constexpr uint32_t child_max_restarts = 5;
constexpr std::chrono::milliseconds child_restart_window{60000};
/// First restart delay of a child, doubled for each further restart within
/// the window, up to child_restart_max_delay.
constexpr std::chrono::milliseconds child_restart_delay{100};
constexpr std::chrono::milliseconds child_restart_max_delay{2000};

/// State of a worker node: the actor that makes a process (or, in local
/// mode, a slice of one) a worker. It supervises the node's BlockManager and
/// TaskExecutor, registers them with the driver, hosts the Receivers the
/// tracker places here, and stops when the driver says Shutdown.
///
/// Supervision: the BlockManager and the TaskExecutor are monitored, not
/// linked. When one ends while the node is not stopping, it is spawned
/// again after a delay (child_restart_delay, doubling) within a budget
/// (child_max_restarts per child_restart_window; past it the node shuts
/// down with errc::node_failed): a BlockManager over the same block_store,
/// so stored blocks survive, a TaskExecutor fresh. The node then registers
/// again with the new handles, which the driver takes as a capability
/// refresh. Receivers put their blocks through this actor (it forwards
/// PutBlock to the current BlockManager, holding puts while it restarts),
/// so a BlockManager restart never strands a receiver with a dead handle.
/// A receiver that ends abnormally is logged and reported to its tracker
/// (ReceiverEvent ERROR); the tracker restarts it. Whatever ends this actor
/// (Shutdown, an exit message, a crash, a kill), its children are stopped:
/// shut_down does it on the orderly paths, the state's destructor on all.
///
/// In cluster mode it finds the driver through the middleman, retrying every
/// 500 ms until it answers, so workers may start before the driver; when the
/// connection to the driver is lost it keeps its blocks and looks for the
/// driver again. A driver that refuses it (a different graph) ends it with
/// errc::graph_mismatch. A driver that declared its node id lost answers
/// with `newIncarnation`: the node hands its receivers over (each stops its
/// source, stores what it buffered and reports every block the driver has
/// not acknowledged to the tracker named in the answer, before it ends),
/// waits for its old BlockManager and TaskExecutor to end, drops every
/// block, takes the next id of its node_identity and registers again as a
/// new worker. Puts of receivers handing over go to the new BlockManager
/// (they report those blocks themselves), so nothing a receiver took from
/// its source is dropped unreported.
/// Lifetime: spawned by the streaming_context (in worker mode restarted by
/// it after a crash, with the same identity and store). Concurrency: an
/// actor; the block store and identity it shares are thread-safe.
struct worker_node_state {
  static const char* name;

  ~worker_node_state();

  std::shared_ptr<node_identity> identity;
  std::string node; ///< identity->current(), kept for logs and messages
  graph* g = nullptr;
  run_settings settings;
  std::optional<endpoint> driver_endpoint; ///< cluster mode
  caf::actor driver;                       ///< the driver's membership actor
  bool registered = false; ///< the driver accepted the current registration
  std::shared_ptr<block_store> store;
  caf::actor block_manager; ///< invalid while it restarts
  caf::actor task_executor; ///< invalid while it restarts
  restart_budget block_manager_budget{child_max_restarts, child_restart_window,
                                      child_restart_delay,
                                      child_restart_max_delay};
  restart_budget task_executor_budget{child_max_restarts, child_restart_window,
                                      child_restart_delay,
                                      child_restart_max_delay};
  /// Receivers' puts that arrived while the BlockManager restarted.
  std::vector<std::pair<caf::response_promise, msg<wire::PutBlock>>> held_puts;
  std::map<uint32_t, caf::actor> receivers;
  std::map<uint32_t, caf::actor> trackers; ///< who started each receiver
  /// Receivers stopping while they hand their unacknowledged blocks to the
  /// driver (hand_over): no longer this node's receivers, but their puts
  /// are still taken and they end with the node.
  std::vector<caf::actor> handing_over;
  /// Children of an incarnation the driver declared lost, still ending.
  std::vector<caf::actor> retiring;
  bool rejoining = false; ///< waits for `retiring` before it registers anew
  bool stopping = false;
  uint64_t connect_failures = 0;
  uint64_t receiver_starts = 0;
};

/// `driver` is the membership actor in local mode; pass an invalid handle and
/// set `settings.driver` for cluster mode. `store` is the node's block store
/// (created when null; the context passes one so it can report it).
caf::behavior worker_node(caf::stateful_actor<worker_node_state>* self,
                          std::shared_ptr<node_identity> identity, graph* g,
                          run_settings settings, caf::actor driver,
                          std::shared_ptr<block_store> store);

} // namespace sluice
