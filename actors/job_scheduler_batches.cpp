#include "actors/job_scheduler_batches.hpp"

#include <algorithm>

#include "messages/schemas.hpp"
#include "runtime/checkpoint/checkpoint_dir.hpp"
#include "runtime/log.hpp"

namespace sluice::scheduler_batches {

namespace {

/// Sends a DropBlocks to a node's BlockManager; one restarting gets it once
/// it re-registered (a drop sent to the dead one would be lost, and the
/// blocks would stay in the store it shares with its successor).
void send_drop(scheduler_ptr self, const std::string& node,
               msg<wire::DropBlocks> m) {
  auto& st = self->state;
  if (st.drops.hold(node, m))
    return;
  if (auto bm = st.block_managers.find(node); bm != st.block_managers.end())
    self->send(bm->second, std::move(m));
}

/// Drops cached partitions no window can read any more.
void expire_cache(scheduler_ptr self, time_ms t) {
  auto& st = self->state;
  std::map<std::string, std::vector<std::string>> by_node;
  for (auto* n : st.g->persisted())
    if (st.checkpointing.count(n->index()) == 0) // read by the checkpointer
      for (auto& ref : st.cache.expire(n->index(), t - n->retention()))
      for (auto& loc : ref.locations)
        by_node[loc].push_back(ref.id);
  for (auto& [node, ids] : by_node) {
    capnp::MallocMessageBuilder b;
    auto list = b.initRoot<wire::DropBlocks>().initIds(static_cast<unsigned>(ids.size()));
    for (unsigned i = 0; i < ids.size(); ++i)
      list.set(i, ids[i]);
    send_drop(self, node, make_msg<wire::DropBlocks>(b));
  }
}

/// The data checkpoints batch `batch` owes: stateful nodes at a multiple of
/// their checkpoint interval (or due in the final batch of a graceful stop)
/// whose every partition was cached.
std::vector<state_checkpoint_job> due_checkpoints(scheduler_ptr self,
                                                  const batch_run& batch) {
  auto& st = self->state;
  std::vector<state_checkpoint_job> jobs;
  if (st.settings.checkpoint_dir.empty() || batch.failed_jobs > 0)
    return jobs;
  checkpoint_dir dir{st.settings.checkpoint_dir};
  for (auto& n : st.g->nodes()) {
    auto t = batch.time;
    // The last batch of a graceful stop checkpoints every state it computed:
    // a restart then starts from exactly where the stop left, recomputing
    // nothing (without it, it would recompute every batch since the last
    // interval).
    if (!n->stateful() || !n->due(t)
        || (t % n->checkpoint_interval() != 0 && !batch.final_batch))
      continue;
    auto* parts = st.cache.at(n->index(), t);
    if (parts == nullptr)
      continue;
    if (std::any_of(parts->begin(), parts->end(),
                    [](const block_ref& r) { return r.id.empty(); }))
      continue;
    state_checkpoint_job job;
    job.node = n->index();
    job.node_id = n->id();
    job.batch = t;
    job.path = dir.state_path(n->id(), t);
    job.partitions = *parts;
    jobs.push_back(std::move(job));
  }
  return jobs;
}

} // namespace

void deliver_batch(scheduler_ptr self, batch_run& batch,
                   const std::vector<uint32_t>& checkpointed) {
  auto& st = self->state;
  uint64_t records = batch.block_records;
  for (auto& [leaf, n] : batch.file_records)
    records += n;
  capnp::MallocMessageBuilder b;
  auto done = b.initRoot<wire::BatchCompleted>();
  done.setBatchTime(batch.time);
  done.setRecords(records);
  done.setSubmittedMs(batch.submitted);
  done.setStartedMs(batch.started != 0 ? batch.started : st.clk->now());
  done.setFinishedMs(st.clk->now());
  done.setFailedJobs(batch.failed_jobs);
  done.setError(batch.error);
  done.setBytes(batch.block_bytes);
  std::vector<const state_checkpoint_job*> written;
  for (auto& job : batch.checkpoints)
    if (std::find(checkpointed.begin(), checkpointed.end(), job.node)
        != checkpointed.end())
      written.push_back(&job);
  auto list = done.initStates(static_cast<unsigned>(written.size()));
  for (unsigned i = 0; i < written.size(); ++i) {
    list[i].setNode(written[i]->node);
    list[i].setBatchTime(written[i]->batch);
    list[i].setFile(written[i]->path);
    list[i].setPartitions(static_cast<uint32_t>(written[i]->partitions.size()));
  }
  batch.done.deliver(make_msg<wire::BatchCompleted>(b));
  st.batches.erase(batch.time);
}

void complete_batch(scheduler_ptr self, batch_run& batch) {
  auto& st = self->state;
  batch.checkpoints = due_checkpoints(self, batch);
  for (auto& job : batch.checkpoints)
    st.checkpointing.insert(job.node);
  expire_cache(self, batch.time);
  // Shuffle output of this batch is no longer needed by anyone.
  {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::DropBlocks>().initPrefixes(1).set(0, shuffle_prefix(batch.time));
    auto drop = make_msg<wire::DropBlocks>(b);
    for (auto& [node, bm] : st.block_managers)
      self->send(bm, drop);
    for (auto& node : st.drops.restarting_nodes()) {
      auto held = drop;
      st.drops.hold(node, held);
    }
  }
  if (batch.checkpoints.empty()) {
    deliver_batch(self, batch, {});
    return;
  }
  self->spawn(state_checkpointer, caf::actor_cast<caf::actor>(self),
              st.block_managers, batch.checkpoints);
}

/// A block of batch `t` got a new copy (the tracker re-replicated it after a
/// node loss): the batch's inputs and the reads of its tasks not launched
/// yet name the new locations, so the next attempts can use them.
void update_locations(scheduler_ptr self, time_ms t, const std::string& id,
                      const std::vector<std::string>& locations) {
  auto& st = self->state;
  auto b = st.batches.find(t);
  if (b == st.batches.end())
    return;
  for (auto& [node, parts] : b->second.inputs)
    for (auto& p : parts)
      if (!p.is_file && p.block.id == id)
        p.block.locations = locations;
  for (auto& [job_id, job] : st.jobs)
    if (job.batch == t)
      for (auto& stage : job.stages)
        for (auto& task : stage.tasks)
          for (auto& r : task.reads)
            if (r.source == leaf_read::kind::block && r.block.id == id)
              r.block.locations = locations;
}

} // namespace sluice::scheduler_batches
