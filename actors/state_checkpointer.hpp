#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/block_read.hpp"
#include "runtime/checkpoint/checkpoint.hpp"
#include "runtime/exec/task_context.hpp"

namespace sluice {

/// One stateful node's partitions to write to a data checkpoint.
struct state_checkpoint_job {
  uint32_t node = 0;
  std::string node_id;
  time_ms batch = 0;
  std::string path;
  std::vector<block_ref> partitions;
};

/// State of a state checkpointer: writes the data checkpoints of one batch.
///
/// It reads every partition from the BlockManagers its refs name (in order,
/// the next copy when one fails), writes one file per node atomically, and
/// sends (state_checkpointed_atom, batch, nodes written) to its parent, then
/// quits. A node whose partitions cannot all be read or written is left out
/// (and logged): its previous data checkpoint stays the one recovery uses.
/// Lifetime: spawned by the JobScheduler once per batch that reaches a
/// checkpoint interval. Not detached, although its file writes wait for
/// fsync on a scheduler thread (as the tracker's and generator's do): a
/// detached actor whose read request still has a timeout in CAF's clock
/// when the system stops (workers leaving mid-read) makes the actor
/// system's destructor wait forever.
struct state_checkpointer_state {
  static const char* name;
  caf::actor parent;
  std::map<std::string, caf::actor> block_managers;
  std::vector<state_checkpoint_job> jobs;
  std::vector<std::vector<state_partition>> parts; ///< per job
  std::vector<std::vector<block_read>> reads;      ///< per job and partition
  std::vector<std::string> errors;                 ///< per job, "" if ok
  size_t outstanding = 0;
};

caf::behavior state_checkpointer(caf::stateful_actor<state_checkpointer_state>* self,
                                 caf::actor parent,
                                 std::map<std::string, caf::actor> block_managers,
                                 std::vector<state_checkpoint_job> jobs);

} // namespace sluice
