#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/block_read.hpp"
#include "runtime/block_store.hpp"
#include "runtime/exec/task_context.hpp"
#include "runtime/exec/task_spec.hpp"
#include "runtime/graph.hpp"

namespace sluice {

/// One block a task needs, and where it may be read.
struct fetch_item : block_read {
  uint32_t leaf = 0;
  uint32_t partition = 0;
  uint32_t side = 0;
  stored_block block;   ///< typed when read locally from a deserialized cache
  bool done = false;
  bool wal_tried = false;
};

/// State of a task runner: runs one task attempt and reports to its
/// TaskExecutor with (task_done_atom, id, msg<TaskResult>), then quits.
///
/// It reads each input block from the local store if present, else from the
/// listed locations in order: a location that fails or lacks the block is
/// skipped for the next one (hot standby), then the receiver WAL copy the
/// block's ref names, and only when none is left does the task fail, naming
/// the block and every location's failure. A local read that fails (a
/// damaged spill file) counts as a failed location.
/// Local reads of partitions cached deserialized hand the typed records to
/// the task as they are; a cache task's replica gets the encoded block and
/// the task's storage level.
/// Lifetime: spawned detached by the TaskExecutor for one task.
struct task_runner_state {
  static const char* name;
  task_spec spec;
  std::vector<caf::actor> caps;
  std::string node;
  graph* g = nullptr;
  std::shared_ptr<block_store> store;
  caf::actor executor;
  uint64_t id = 0;
  std::vector<fetch_item> fetches;
  size_t outstanding = 0;
  uint32_t wal_reads = 0;     ///< blocks read back from a receiver WAL
  bool failed = false;
  std::unique_ptr<task_context> ctx; ///< kept while replicas are written
  size_t replicas_pending = 0;
};

caf::behavior task_runner(caf::stateful_actor<task_runner_state>* self,
                          task_spec spec, std::vector<caf::actor> caps,
                          std::string node, graph* g,
                          std::shared_ptr<block_store> store,
                          caf::actor executor, uint64_t id);

} // namespace sluice
