#pragma once

// Internal to the JobScheduler (actors/job_scheduler.cpp): how a batch
// completes. Split from job_scheduler.cpp to keep files small; nothing else
// includes it.

#include <cstdint>
#include <string>
#include <vector>

#include "actors/job_scheduler.hpp"

namespace sluice::scheduler_batches {

using scheduler_ptr = caf::stateful_actor<job_scheduler_state>*;

/// Every job of `batch` ended: expires cached partitions no window needs,
/// drops the batch's shuffle output on every node, and answers the JobSet
/// (deliver_batch), after the data checkpoints the batch owes are written
/// when it owes any (the state_checkpointer answers the scheduler, which
/// then calls deliver_batch).
void complete_batch(scheduler_ptr self, batch_run& batch);

/// Answers the batch's JobSet with BatchCompleted (naming the state files
/// of `checkpointed`) and forgets the batch.
void deliver_batch(scheduler_ptr self, batch_run& batch,
                   const std::vector<uint32_t>& checkpointed);

/// A block of batch `t` got a new copy (the tracker re-replicated it after
/// a node loss): the batch's inputs and its tasks' reads name `locations`
/// from now on, so later attempts can use it.
void update_locations(scheduler_ptr self, time_ms t, const std::string& id,
                      const std::vector<std::string>& locations);

} // namespace sluice::scheduler_batches
