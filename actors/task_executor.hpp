#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/block_store.hpp"
#include "runtime/graph.hpp"

namespace sluice {

/// State of a TaskExecutor: one per worker node.
///
/// Protocol: LaunchTask (capabilities: the BlockManagers named by its peers
/// list) -> TaskResult. Each task runs in its own detached actor (a "task
/// runner"), so user code that blocks never stalls the node's other actors;
/// the scheduler never sends more tasks than the executor's slots. A
/// malformed LaunchTask is answered with errc::malformed_message. The first
/// task it runs is logged (info), so a log shows when a node took work.
/// Lifetime: spawned by its worker node, which restarts it when it crashes
/// and stops it when the node ends; runners still going when it ends finish
/// and their results are dropped (the requests it held are never answered:
/// CAF 0.17 delivers nothing for a promise that dies with its actor, so the
/// scheduler watches executors and gives such tasks up itself).
struct task_executor_state {
  static const char* name;
  std::string node;
  graph* g = nullptr;
  std::shared_ptr<block_store> store;
  uint64_t next_id = 0;
  bool ran_a_task = false;
  std::unordered_map<uint64_t, caf::response_promise> pending;
};

caf::behavior task_executor(caf::stateful_actor<task_executor_state>* self,
                            std::string node, graph* g,
                            std::shared_ptr<block_store> store);

} // namespace sluice
