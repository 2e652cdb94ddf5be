#include "actors/job_scheduler.hpp"

#include <algorithm>

#include <caf/exit_reason.hpp>

#include "actors/atoms.hpp"
#include "actors/job_scheduler_batches.hpp"
#include "messages/schemas.hpp"
#include "runtime/exec/placement.hpp"
#include "runtime/cluster/lost_state.hpp"
#include "runtime/log.hpp"

namespace sluice {

const char* job_scheduler_state::name = "job_scheduler";

namespace {

using scheduler_ptr = caf::stateful_actor<job_scheduler_state>*;
using steady = std::chrono::steady_clock;
using scheduler_batches::complete_batch;
using scheduler_batches::deliver_batch;

/// A delayed dispatch for tasks waiting for a preferred node; carries the
/// deadline (ns since the steady clock's epoch) it was armed for.
using locality_atom = caf::atom_constant<caf::atom("locality")>;

void dispatch(scheduler_ptr self);
void start_jobs(scheduler_ptr self);
void submit_ready_stages(scheduler_ptr self, job_run& job);
bool reads_from(const scheduled_task& t, const std::string& node);

/// Queues a task for dispatch; its locality wait starts now.
void make_pending(scheduler_ptr self, uint64_t job, scheduled_task& t) {
  t.pending_since = steady::now();
  self->state.pending.emplace_back(job, std::make_pair(t.stage, t.partition));
}

batch_run* batch_of(scheduler_ptr self, const job_run& job) {
  auto i = self->state.batches.find(job.batch);
  return i == self->state.batches.end() ? nullptr : &i->second;
}

void end_job(scheduler_ptr self, job_run& job) {
  auto& st = self->state;
  auto* batch = batch_of(self, job);
  --st.running_jobs;
  if (job.cache)
    st.running_cache_job = false;
  // Forget queued tasks of this job; running ones are ignored when they end.
  auto& pending = st.pending;
  pending.erase(std::remove_if(pending.begin(), pending.end(),
                               [&](auto& p) { return p.first == job.id; }),
                pending.end());
  auto id = job.id;
  if (batch != nullptr) {
    if (job.failed)
      ++batch->failed_jobs;
    if (--batch->jobs_left == 0)
      complete_batch(self, *batch);
  }
  st.jobs.erase(id);
  start_jobs(self);
  dispatch(self);
}

void fail_job(scheduler_ptr self, job_run& job, const std::string& why) {
  SLUICE_ERROR("scheduler", "job " << job.id << " of batch " << job.batch
                                   << " ms failed: " << why);
  job.failed = true;
  if (auto* batch = batch_of(self, job); batch != nullptr && batch->error.empty())
    batch->error = why;
  end_job(self, job);
}

void finish_output(scheduler_ptr self, job_run& job, stage_run& stage) {
  if (job.cache) {
    end_job(self, job);
    return;
  }
  auto* out = dynamic_cast<output_base*>(self->state.g->at(job.output));
  if (out != nullptr && out->collects()) {
    // User code (print, foreach_batch) runs here on the driver; its failure
    // fails the job, never the scheduler.
    try {
      out->on_driver(job.batch, stage.results);
    } catch (const std::exception& e) {
      fail_job(self, job, "output " + self->state.g->at(job.output)->id()
                            + " failed on the driver: " + e.what());
      return;
    }
  }
  end_job(self, job);
}

void stage_finished(scheduler_ptr self, job_run& job, stage_run& stage) {
  stage.done = true;
  if (stage.plan.action == task_action::shuffle_write) {
    if (auto* batch = batch_of(self, job))
      batch->shuffles_done.emplace(stage.plan.target, stage.plan.side);
    submit_ready_stages(self, job);
    return;
  }
  finish_output(self, job, stage);
}

void submit_stage(scheduler_ptr self, job_run& job, stage_run& stage) {
  auto* batch = batch_of(self, job);
  stage.submitted = true;
  if (batch == nullptr)
    return;
  if (stage.plan.action == task_action::shuffle_write
      && batch->shuffles_done.count({stage.plan.target, stage.plan.side}) > 0) {
    // An earlier job of this batch already wrote this shuffle.
    stage_finished(self, job, stage);
    return;
  }
  auto n = batch->counts.at(stage.plan.final_node);
  if (stage.plan.action == task_action::cache)
    self->state.cache.begin(stage.plan.target, batch->time, n);
  stage.tasks.resize(n);
  stage.results.resize(n);
  stage.tasks_left = n;
  if (n == 0) {
    stage_finished(self, job, stage);
    return;
  }
  for (uint32_t p = 0; p < n; ++p) {
    auto& t = stage.tasks[p];
    t.job = job.id;
    t.stage = stage.plan.id;
    t.partition = p;
    try {
      t.reads = plan_reads(*self->state.g, batch->counts, batch->inputs,
                           batch->map_outputs, stage.plan.final_node, p,
                           self->state.cache, batch->time);
    } catch (const std::exception& e) {
      fail_job(self, job, std::string{"cannot plan a task: "} + e.what());
      return;
    }
    make_pending(self, job.id, t);
  }
}

void submit_ready_stages(scheduler_ptr self, job_run& job) {
  // Copy the id: submitting a stage may end (and erase) the job.
  auto id = job.id;
  auto& jobs = self->state.jobs;
  for (size_t i = 0;; ++i) {
    auto j = jobs.find(id);
    if (j == jobs.end() || i >= j->second.stages.size())
      return;
    auto& stage = j->second.stages[i];
    if (stage.submitted)
      continue;
    bool ready = std::all_of(stage.plan.parents.begin(), stage.plan.parents.end(),
                             [&](uint32_t p) { return j->second.stages[p].done; });
    if (ready)
      submit_stage(self, j->second, stage);
  }
}

void start_jobs(scheduler_ptr self) {
  auto& st = self->state;
  while (!st.job_queue.empty() && !st.running_cache_job
         && st.running_jobs < st.settings.concurrent_jobs) {
    auto id = st.job_queue.front();
    auto j = st.jobs.find(id);
    if (j == st.jobs.end()) {
      st.job_queue.pop_front();
      continue;
    }
    // A cache job runs alone: the jobs after it may read what it stores.
    if (j->second.cache && st.running_jobs > 0)
      return;
    st.job_queue.pop_front();
    ++st.running_jobs;
    st.running_cache_job = j->second.cache;
    if (auto* batch = batch_of(self, j->second)) {
      if (batch->started == 0)
        batch->started = st.clk->now();
      // Windows count the partitions cached so far, so count at job start.
      batch->counts = count_partitions(*st.g, batch->inputs, st.cache, batch->time);
    }
    submit_ready_stages(self, j->second);
  }
}

void task_ended(scheduler_ptr self, uint64_t job_id, uint32_t stage_id,
                uint32_t p, uint32_t attempt, const caf::error& failure,
                const msg<wire::TaskResult>* result);

void launch(scheduler_ptr self, job_run& job, stage_run& stage,
            scheduled_task& t, const std::string& node, executor_slot& exec) {
  auto& st = self->state;
  auto* batch = batch_of(self, job);
  t.running = true;
  t.node = node;
  ++t.attempt;
  ++exec.busy;
  ++exec.launched;
  task_spec spec;
  spec.batch_time = job.batch;
  spec.job = job.id;
  spec.stage = stage.plan.id;
  spec.partition = t.partition;
  spec.attempt = t.attempt;
  spec.final_node = stage.plan.final_node;
  spec.action = stage.plan.action;
  spec.target = stage.plan.target;
  spec.shuffle_side = stage.plan.side;
  if (stage.plan.action == task_action::cache)
    spec.level = st.g->at(stage.plan.target)->level();
  if (stage.plan.action == task_action::cache
      && st.g->at(stage.plan.target)->replication() > 1) {
    // The copy goes to the least loaded other node (with a BlockManager up);
    // with one worker the partition keeps one copy.
    const executor_slot* best = nullptr;
    for (auto& [name, e] : st.executors)
      if (name != node && st.block_managers.count(name) > 0
          && (best == nullptr || e.busy < best->busy)) {
        best = &e;
        spec.replica_node = name;
      }
  }
  spec.counts = batch->counts;
  spec.reads = t.reads;
  std::vector<caf::actor> caps;
  auto add_peer = [&](const std::string& loc) {
    for (auto& p : spec.peers)
      if (p.first == loc)
        return;
    auto bm = st.block_managers.find(loc);
    if (bm == st.block_managers.end())
      return;
    spec.peers.emplace_back(loc, static_cast<uint32_t>(caps.size()));
    caps.push_back(bm->second);
  };
  if (!spec.replica_node.empty())
    add_peer(spec.replica_node);
  for (auto& r : spec.reads) {
    for (auto& loc : r.block.locations)
      add_peer(loc);
    for (auto& ref : r.shuffle)
      for (auto& loc : ref.locations)
        add_peer(loc);
  }
  capnp::MallocMessageBuilder b;
  encode(spec, b.initRoot<wire::LaunchTask>());
  auto job_id = job.id;
  auto stage_id = stage.plan.id;
  auto p = t.partition;
  auto attempt = t.attempt;
  self->request(exec.task_executor, caf::infinite,
                make_msg<wire::LaunchTask>(b, {}, std::move(caps)))
    .then(
      [=](const msg<wire::TaskResult>& result) {
        task_ended(self, job_id, stage_id, p, attempt, caf::none, &result);
      },
      [=](caf::error& err) {
        task_ended(self, job_id, stage_id, p, attempt, err, nullptr);
      });
}

/// Arms a delayed dispatch for `until`, unless one fires earlier.
void arm_locality_timer(scheduler_ptr self, steady::time_point until) {
  auto& st = self->state;
  if (st.locality_timer && *st.locality_timer <= until)
    return;
  st.locality_timer = until;
  auto delay = std::chrono::ceil<std::chrono::milliseconds>(until - steady::now());
  self->delayed_send(self, std::max(delay, std::chrono::milliseconds{1}),
                     locality_atom::value,
                     static_cast<int64_t>(until.time_since_epoch().count()));
}

/// True if the task reads from a node whose BlockManager is restarting:
/// launched now, it would fail for want of it.
bool reads_from_restarting(scheduler_ptr self, const scheduled_task& t) {
  for (auto& node : self->state.drops.restarting_nodes())
    if (reads_from(t, node))
      return true;
  return false;
}

/// Launches pending tasks on free slots, in order, as placement decides: a
/// task waiting for a busy preferred node lets later ones pass.
void dispatch(scheduler_ptr self) {
  auto& st = self->state;
  auto now = steady::now();
  std::map<std::string, executor_load> loads;
  uint32_t free_slots = 0;
  for (auto& [name, e] : st.executors) {
    loads.emplace(name, executor_load{e.slots, e.busy, e.launched});
    free_slots += e.busy < e.slots ? e.slots - e.busy : 0;
  }
  std::optional<steady::time_point> earliest;
  for (auto i = st.pending.begin(); i != st.pending.end() && free_slots > 0;) {
    auto j = st.jobs.find(i->first);
    if (j == st.jobs.end()) {
      i = st.pending.erase(i);
      continue;
    }
    auto& stage = j->second.stages[i->second.first];
    auto& t = stage.tasks[i->second.second];
    if (reads_from_restarting(self, t)) {
      ++i; // dispatched again when that node re-registers or is lost
      continue;
    }
    placement_task want{input_bytes_by_node(t.reads),
                        t.failures > 0 ? t.node : std::string{}, t.pending_since};
    auto where = place_task(want, loads, now, st.settings.locality_wait);
    if (where.what == placement_decision::kind::no_slot)
      break; // every slot busy, or no worker yet
    if (where.what == placement_decision::kind::wait) {
      earliest = earliest ? std::min(*earliest, where.until) : where.until;
      ++i;
      continue;
    }
    i = st.pending.erase(i);
    --free_slots;
    ++loads[where.node].busy;
    ++loads[where.node].launched;
    launch(self, j->second, stage, t, where.node, st.executors.at(where.node));
  }
  if (earliest)
    arm_locality_timer(self, *earliest);
}

void retry_or_fail(scheduler_ptr self, job_run& job, scheduled_task& t,
                   const std::string& why) {
  auto& st = self->state;
  ++t.failures;
  t.last_error = why;
  if (t.failures >= st.settings.task_max_failures) {
    fail_job(self, job,
             "task " + std::to_string(job.id) + "." + std::to_string(t.stage)
               + "." + std::to_string(t.partition) + " failed "
               + std::to_string(t.failures) + " times, last: " + why);
    return;
  }
  SLUICE_WARN("scheduler", "task " << job.id << "." << t.stage << "."
                                   << t.partition << " of batch " << job.batch
                                   << " ms failed on " << t.node << " (attempt "
                                   << t.failures << "), retrying: " << why);
  make_pending(self, job.id, t);
}

void task_ended(scheduler_ptr self, uint64_t job_id, uint32_t stage_id,
                uint32_t p, uint32_t attempt, const caf::error& failure,
                const msg<wire::TaskResult>* result) {
  auto& st = self->state;
  auto j = st.jobs.find(job_id);
  if (j == st.jobs.end())
    return; // the job ended (failed) while this task ran
  auto& job = j->second;
  auto& stage = job.stages[stage_id];
  auto& t = stage.tasks[p];
  if (!t.running || t.attempt != attempt)
    return; // stale: this attempt was given up (its worker was lost)
  t.running = false;
  if (auto e = st.executors.find(t.node); e != st.executors.end() && e->second.busy > 0)
    --e->second.busy;
  std::string why;
  bool ok = false;
  std::vector<shuffle_output> outputs;
  uint64_t input_records = 0;
  if (failure) {
    why = describe(failure);
  } else if (auto err = read_msg(*result, [&](wire::TaskResult::Reader r) {
               ok = r.getOk();
               why = r.getError();
               input_records = r.getInputRecords();
               for (auto o : r.getShuffleOutputs())
                 outputs.push_back(shuffle_output{o.getReducer(), o.getId(),
                                                  o.getRecords(), o.getBytes(),
                                                  o.getReplica()});
             })) {
    why = describe(err);
  }
  if (!ok) {
    retry_or_fail(self, job, t, why);
    dispatch(self);
    return;
  }
  t.done = true;
  auto* batch = batch_of(self, job);
  if (batch != nullptr) {
    for (auto& r : t.reads)
      if (r.source == leaf_read::kind::file) {
        batch->file_records.emplace(std::make_pair(r.node, r.partition),
                                    input_records);
        break;
      }
    if (stage.plan.action == task_action::shuffle_write)
      batch->map_outputs.add(stage.plan.target, stage.plan.side, p, outputs,
                             t.node);
    if (stage.plan.action == task_action::cache)
      for (auto& o : outputs) {
        block_ref ref{o.id, o.records, o.bytes, {t.node}, {}};
        if (!o.replica.empty())
          ref.locations.push_back(o.replica);
        st.cache.set(stage.plan.target, batch->time, o.bucket, std::move(ref));
      }
  }
  if (stage.plan.action == task_action::output)
    stage.results[p] = result->payload;
  if (--stage.tasks_left == 0)
    stage_finished(self, job, stage);
  dispatch(self);
}

/// Gives up a running attempt: its reply, when it comes, is stale (the task
/// is no longer running, or runs as a later attempt) and ignored. The slot
/// is freed now: the attempt given up only waits for a node that is gone.
void abandon(scheduler_ptr self, scheduled_task& t) {
  if (!t.running)
    return;
  t.running = false;
  auto& execs = self->state.executors;
  if (auto e = execs.find(t.node); e != execs.end() && e->second.busy > 0)
    --e->second.busy;
}

/// True if one of the task's reads lists a copy on `node`.
bool reads_from(const scheduled_task& t, const std::string& node) {
  auto on = [&](const block_ref& ref) {
    return std::find(ref.locations.begin(), ref.locations.end(), node)
           != ref.locations.end();
  };
  for (auto& r : t.reads) {
    if (on(r.block))
      return true;
    for (auto& ref : r.shuffle)
      if (on(ref))
        return true;
  }
  return false;
}

/// Runs a started job again from its first stage: map output it depends on
/// was lost with a worker. Stages planned before the loss would wait for
/// blocks that no longer exist (and fail), stages planned after it would
/// silently read the remaining buckets only; re-running the map stage
/// writes every bucket again. Attempt numbers keep growing, so replies of
/// the attempts given up stay stale. Output tasks that already ran write
/// the same part files again (same names, replaced atomically).
void restart_job(scheduler_ptr self, uint64_t id) {
  auto& st = self->state;
  auto j = st.jobs.find(id);
  if (j == st.jobs.end())
    return;
  auto& job = j->second;
  SLUICE_WARN("scheduler", "job " << id << " of batch " << job.batch
                                  << " ms runs again: map output it reads was lost");
  st.pending.erase(std::remove_if(st.pending.begin(), st.pending.end(),
                                  [&](auto& p) { return p.first == id; }),
                   st.pending.end());
  for (auto& stage : job.stages) {
    for (auto& t : stage.tasks) {
      abandon(self, t);
      t.done = false;
      t.failures = 0;
    }
    stage.submitted = false;
    stage.done = false;
    stage.tasks_left = 0;
    stage.results.clear();
  }
  submit_ready_stages(self, job);
}

/// An error if a stateful node's partition that a later batch reads lost
/// its every copy with worker `node` (a single-copy storage level).
caf::error check_state(scheduler_ptr self, const std::string& node) {
  auto& st = self->state;
  // A node whose BlockManager is restarting keeps its store.
  auto lost = lost_state(*st.g, st.cache, [&](const std::string& loc) {
    return st.block_managers.count(loc) > 0 || st.drops.is_restarting(loc);
  });
  if (lost.empty())
    return caf::none;
  return make_error(errc::state_lost,
                    "the state of " + lost + " had its only copy on worker " + node
                      + ", which was lost: the driver stops so that its restart "
                        "recomputes the state from the newest data checkpoint "
                        "(run it with --supervise or under a service manager; "
                        "persist the state at a _2 storage level to keep a "
                        "second copy instead)");
}

/// Fails the attempts running on `node`, whose TaskExecutor will never
/// answer them (the node was lost, or its executor ended): each counts as a
/// failure of its task, which runs again (elsewhere when it can).
void fail_running_on(scheduler_ptr self, const std::string& node,
                     const std::string& why) {
  auto& st = self->state;
  std::vector<std::tuple<uint64_t, uint32_t, uint32_t>> lost;
  for (auto& [id, job] : st.jobs)
    for (auto& stage : job.stages)
      for (auto& t : stage.tasks)
        if (t.running && t.node == node)
          lost.emplace_back(id, stage.plan.id, t.partition);
  for (auto& [id, s, p] : lost) {
    auto j = st.jobs.find(id);
    if (j == st.jobs.end())
      continue;
    auto& t = j->second.stages[s].tasks[p];
    abandon(self, t);
    retry_or_fail(self, j->second, t, why);
  }
}

/// Attempts elsewhere that read a block from `node` would wait for a reply
/// that never comes (until the fetch timeout) or fail for want of its
/// BlockManager; launched again, they skip a lost copy at once (the next
/// copy, or the receiver WAL), or wait for the node's next BlockManager.
/// Not a failure of theirs. Tasks on `node` itself read its store directly.
void relaunch_readers(scheduler_ptr self, const std::string& node) {
  for (auto& [id, job] : self->state.jobs)
    for (auto& stage : job.stages)
      for (auto& t : stage.tasks)
        if (t.running && t.node != node && reads_from(t, node)) {
          abandon(self, t);
          make_pending(self, id, t);
        }
}

/// False if the loss ended the scheduler (state lost).
bool worker_lost(scheduler_ptr self, const std::string& node) {
  auto& st = self->state;
  st.executors.erase(node);
  st.block_managers.erase(node);
  st.drops.forget(node);
  fail_running_on(self, node, "worker " + node + " was lost");
  std::vector<uint64_t> restart;
  for (auto& [t, batch] : st.batches) {
    auto shuffles = batch.map_outputs.remove_node(node);
    if (shuffles.empty())
      continue;
    SLUICE_WARN("scheduler", "shuffle output of batch " << t << " ms on " << node
                                                        << " is lost");
    // Jobs not started yet write these shuffles themselves.
    for (auto i = batch.shuffles_done.begin(); i != batch.shuffles_done.end();)
      if (std::find(shuffles.begin(), shuffles.end(), i->first) != shuffles.end())
        i = batch.shuffles_done.erase(i);
      else
        ++i;
    // Started jobs that write (or reuse) one of them run again.
    for (auto& [id, job] : st.jobs) {
      if (job.batch != t)
        continue;
      bool started = false;
      bool reads_lost = false;
      for (auto& stage : job.stages) {
        started = started || stage.submitted;
        reads_lost = reads_lost
                     || (stage.plan.action == task_action::shuffle_write
                         && std::find(shuffles.begin(), shuffles.end(),
                                      stage.plan.target)
                              != shuffles.end());
      }
      if (started && reads_lost)
        restart.push_back(id);
    }
  }
  for (auto id : restart)
    restart_job(self, id);
  if (auto err = check_state(self, node)) {
    // Recomputing the lost partitions means the recovery a restarted driver
    // runs: state from the newest data checkpoint, then every batch since
    // from its logged inputs, and the pending batches again in full. The
    // driver stops before any batch completes without its state; its
    // supervisor (--supervise, a service manager) starts it again.
    SLUICE_ERROR("scheduler", describe(err));
    self->quit(std::move(err));
    return false;
  }
  relaunch_readers(self, node);
  return true;
}

/// A monitored TaskExecutor or BlockManager of a registered node ended.
/// (At a stop they end normally; the node's loss follows, and says so.)
void child_down(scheduler_ptr self, const caf::down_msg& dm) {
  auto& st = self->state;
  bool crashed = dm.reason && dm.reason != caf::exit_reason::normal
                 && dm.reason != caf::exit_reason::user_shutdown;
  for (auto& [name, e] : st.executors)
    if (e.task_executor.address() == dm.source) {
      auto node = name; // the entry goes
      auto why = "the TaskExecutor of " + node + " ended (" + describe(dm.reason)
                 + ")";
      if (crashed)
        SLUICE_WARN("scheduler", why << ": its running tasks run again");
      st.executors.erase(node);
      fail_running_on(self, node, why);
      return;
    }
  for (auto& [name, bm] : st.block_managers)
    if (bm.address() == dm.source) {
      auto node = name;
      if (crashed)
        SLUICE_WARN("scheduler", "the BlockManager of "
                                   << node << " ended (" << describe(dm.reason)
                                   << "): tasks reading from it wait for its "
                                      "next one");
      st.block_managers.erase(node);
      st.drops.restarting(node);
      relaunch_readers(self, node);
      return;
    }
}

/// A registered node announced a new BlockManager or TaskExecutor (it
/// restarted one). A replaced handle whose end has not reached us yet is
/// handled as if it had.
void worker_refreshed(scheduler_ptr self, const std::string& node,
                      const caf::actor& bm, const caf::actor& te,
                      uint32_t slots) {
  auto& st = self->state;
  auto e = st.executors.find(node);
  if (e != st.executors.end() && e->second.task_executor == te) {
    e->second.slots = slots;
  } else {
    if (e != st.executors.end()) {
      st.executors.erase(e);
      fail_running_on(self, node, "the TaskExecutor of " + node + " was replaced");
    }
    st.executors[node] = executor_slot{te, slots, 0};
    self->monitor(te);
  }
  auto b = st.block_managers.find(node);
  if (b == st.block_managers.end() || b->second != bm) {
    if (b != st.block_managers.end())
      relaunch_readers(self, node);
    st.block_managers[node] = bm;
    self->monitor(bm);
    for (auto& drop : st.drops.refreshed(node))
      self->send(bm, std::move(drop));
  }
}

} // namespace

caf::behavior job_scheduler(scheduler_ptr self, graph* g, run_settings settings,
                            std::shared_ptr<clock> clk,
                            caf::actor driver_block_manager,
                            std::shared_ptr<const recovery_plan> plan) {
  auto& st = self->state;
  st.g = g;
  st.settings = std::move(settings);
  st.clk = std::move(clk);
  st.plan = std::move(plan);
  if (driver_block_manager)
    st.block_managers.emplace("driver", std::move(driver_block_manager));
  if (st.plan)
    for (auto& s : st.plan->states) {
      st.cache.begin(s.node, s.batch, static_cast<uint32_t>(s.partitions.size()));
      for (uint32_t p = 0; p < s.partitions.size(); ++p)
        st.cache.set(s.node, s.batch, p, s.partitions[p]);
      st.restored[s.node] = s.batch;
    }
  self->set_down_handler([self](caf::down_msg& dm) {
    child_down(self, dm);
    dispatch(self);
  });
  return {
    [self](locality_atom, int64_t armed_for) {
      auto& st = self->state;
      if (st.locality_timer
          && st.locality_timer->time_since_epoch().count() == armed_for)
        st.locality_timer.reset();
      dispatch(self);
    },
    [self](state_checkpointed_atom, time_ms t, std::vector<uint32_t>& written) {
      auto& st = self->state;
      auto i = st.batches.find(t);
      if (i == st.batches.end())
        return;
      for (auto& job : i->second.checkpoints)
        st.checkpointing.erase(job.node);
      deliver_batch(self, i->second, written);
    },
    [self](const msg<wire::WorkerChange>& m) {
      auto& st = self->state;
      std::string node;
      bool joined = false;
      bool refreshed = false;
      uint32_t slots = 1;
      if (auto err = read_msg(m, [&](wire::WorkerChange::Reader r) {
            node = r.getNode();
            joined = r.getJoined();
            refreshed = r.getRefreshed();
            slots = std::max(1u, r.getSlots());
          })) {
        SLUICE_WARN("scheduler", describe(err));
        return;
      }
      if (joined && refreshed && m.caps.size() >= 2) {
        worker_refreshed(self, node, m.caps[0], m.caps[1], slots);
        dispatch(self);
      } else if (joined && m.caps.size() >= 2) {
        st.executors[node] = executor_slot{m.caps[1], slots, 0};
        st.block_managers[node] = m.caps[0];
        st.drops.forget(node);
        self->monitor(m.caps[0]);
        self->monitor(m.caps[1]);
        dispatch(self);
      } else if (!joined && worker_lost(self, node)) {
        dispatch(self);
      }
    },
    [self](const msg<wire::BlockLocations>& m) {
      time_ms t = 0;
      std::string id;
      std::vector<std::string> locations;
      if (auto err = read_msg(m, [&](wire::BlockLocations::Reader r) {
            t = r.getBatchTime();
            id = r.getId();
            for (auto l : r.getLocations())
              locations.emplace_back(l);
          })) {
        SLUICE_WARN("scheduler", describe(err));
        return;
      }
      scheduler_batches::update_locations(self, t, id, locations);
    },
    [self](const msg<wire::JobSet>& m) -> caf::result<msg<wire::BatchCompleted>> {
      auto& st = self->state;
      batch_run batch;
      if (auto err = read_msg(m, [&](wire::JobSet::Reader r) {
            batch.time = r.getBatchTime();
            batch.inputs = decode_inputs(r.getInputs());
            batch.recompute = r.getRecompute();
            batch.final_batch = r.getFinalBatch();
            for (auto& [node, parts] : batch.inputs)
              for (auto& p : parts)
                if (!p.is_file) {
                  batch.block_records += p.records;
                  batch.block_bytes += p.block.bytes;
                }
          }))
        return err;
      if (st.batches.count(batch.time) > 0)
        return make_error(errc::refused, "batch " + std::to_string(batch.time)
                                           + " ms is already running");
      batch.counts = count_partitions(*st.g, batch.inputs, st.cache, batch.time);
      batch.submitted = st.clk->now();
      batch.done = self->make_response_promise();
      auto t = batch.time;
      // Persisted nodes first (each alone, in topological order), then the
      // outputs due in this batch.
      std::vector<std::pair<node_base*, bool>> targets;
      for (auto* n : st.g->persisted()) {
        auto r = st.restored.find(n->index());
        if (n->due(t) && (r == st.restored.end() || t > r->second))
          targets.emplace_back(n, true);
      }
      if (!batch.recompute)
        for (auto* out : st.g->outputs())
          if (out->due(t))
            targets.emplace_back(out, false);
      batch.jobs = batch.jobs_left = static_cast<uint32_t>(targets.size());
      auto& stored = st.batches.emplace(t, std::move(batch)).first->second;
      if (targets.empty()) {
        // Nothing is due (e.g. between the slides of a window).
        complete_batch(self, stored);
        return caf::delegated<msg<wire::BatchCompleted>>{};
      }
      for (auto& [n, cache] : targets) {
        job_run job;
        job.id = st.next_job++;
        job.batch = t;
        job.output = n->index();
        job.cache = cache;
        for (auto& plan : cache ? plan_cache_job(*st.g, *n) : plan_job(*st.g, *n)) {
          stage_run s;
          s.plan = plan;
          job.stages.push_back(std::move(s));
        }
        st.job_queue.push_back(job.id);
        st.jobs.emplace(job.id, std::move(job));
      }
      start_jobs(self);
      dispatch(self);
      return caf::delegated<msg<wire::BatchCompleted>>{};
    },
  };
}

} // namespace sluice
