#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/block_store.hpp"
#include "runtime/config.hpp"
#include "runtime/graph.hpp"

namespace sluice {

/// State of a worker node: the actor that makes a process (or, in local
/// mode, a slice of one) a worker. It owns the node's BlockManager and
/// TaskExecutor (linked), registers them with the driver, hosts the
/// Receivers the tracker places here, and stops when the driver says
/// Shutdown.
///
/// In cluster mode it finds the driver through the middleman, retrying every
/// 500 ms until it answers, so workers may start before the driver; when the
/// connection to the driver is lost it keeps its blocks and looks for the
/// driver again. A driver that refuses it (a different graph) ends it with
/// errc::graph_mismatch. Lifetime: spawned by the streaming_context.
struct worker_node_state {
  static const char* name;
  std::string node;
  graph* g = nullptr;
  run_settings settings;
  std::optional<endpoint> driver_endpoint; ///< cluster mode
  caf::actor driver;                       ///< the driver's membership actor
  std::shared_ptr<block_store> store;
  caf::actor block_manager;
  caf::actor task_executor;
  std::map<uint32_t, caf::actor> receivers;
  uint64_t connect_failures = 0;
  uint64_t receiver_starts = 0;
};

/// `driver` is the membership actor in local mode; pass an invalid handle and
/// set `settings.driver` for cluster mode. `store` is the node's block store
/// (created when null; local mode passes one so the context can report it).
caf::behavior worker_node(caf::stateful_actor<worker_node_state>* self,
                          std::string node, graph* g, run_settings settings,
                          caf::actor driver,
                          std::shared_ptr<block_store> store);

} // namespace sluice
