#include "actors/job_generator.hpp"

#include "actors/atoms.hpp"
#include "messages/schemas.hpp"
#include "runtime/exec/planner.hpp"
#include "runtime/log.hpp"
#include "runtime/nodes/input_nodes.hpp"
#include "runtime/recovery/paths.hpp"

#include <filesystem>
#include <limits>

namespace sluice {

const char* job_generator_state::name = "job_generator";

namespace {

using generator_ptr = caf::stateful_actor<job_generator_state>*;

std::string queue_block_id(uint32_t node, time_ms t) {
  return "q/" + std::to_string(node) + "/" + std::to_string(t);
}

void generate_next(generator_ptr self);

void maybe_finish_stop(generator_ptr self) {
  auto& st = self->state;
  if (st.stopping && st.final_batch != 0 && st.last_generated >= st.final_batch
      && !st.generating && st.in_flight.empty() && st.recomputing.empty()
      && st.due.empty()) {
    st.stopped.deliver(true);
    st.stopping = false;
  }
}

/// The newest batch time up to which every batch completed.
time_ms completed_upto(generator_ptr self) {
  auto& st = self->state;
  auto upto = st.max_completed;
  if (!st.in_flight.empty())
    upto = std::min(upto, *st.in_flight.begin() - st.interval);
  return upto;
}

/// Writes a metadata checkpoint (docs/contracts.md, "Durable files") for
/// batch `t`.
void write_checkpoint(generator_ptr self, time_ms t) {
  auto& st = self->state;
  if (!st.checkpoints)
    return;
  checkpoint_metadata m;
  m.checkpoint_time_ms = t;
  m.batch_interval_ms = st.interval;
  m.graph_fingerprint = st.g->fingerprint();
  for (auto& n : st.g->nodes())
    m.operators.push_back(checkpoint_operator{
      n->id(), n->op(), n->slide(), n->window_length(), n->stateful(),
      n->stateful() ? n->checkpoint_interval() : 0});
  m.last_completed_ms = completed_upto(self);
  m.last_generated_ms = st.last_generated;
  m.pending_ms.assign(st.in_flight.begin(), st.in_flight.end());
  auto next = m.last_completed_ms < 0 ? st.first_batch
                                      : m.last_completed_ms + st.interval;
  m.recovery_horizon_ms = recovery_horizon(*st.g, next, st.first_batch,
                                           st.state_times);
  for (auto& [node, ref] : st.states)
    m.states.push_back(ref);
  for (auto& [node, scanner] : st.scanners) {
    auto& seen = scanner.seen();
    m.directories.push_back(directory_position{
      st.g->at(node)->id(), std::vector<std::string>(seen.begin(), seen.end())});
  }
  auto& cfg = st.settings;
  m.config = {{"first-batch-ms", std::to_string(st.first_batch)},
              {"batch-interval-ms", std::to_string(st.interval)},
              {"block-interval-ms", std::to_string(cfg.block_interval.count())},
              {"default-parallelism", std::to_string(cfg.default_parallelism)},
              {"wal.enable", cfg.wal_enable ? "true" : "false"},
              {"wal.rolling-interval-ms",
               std::to_string(cfg.wal_rolling_interval.count())},
              {"checkpoint.dir", cfg.checkpoint_dir}};
  m.written_at_ms = system_clock{}.now();
  if (auto err = st.checkpoints->write(m)) {
    // The previous checkpoints stay valid, so recovery still works, from
    // further back; say so once per streak, not every batch.
    if (st.checkpoint_failures++ % 20 == 0)
      SLUICE_ERROR("generator", "metadata checkpoint of batch "
                                  << t << " ms not written: " << describe(err));
    return;
  }
  st.checkpoint_failures = 0;
  st.horizons.push_back(m.recovery_horizon_ms);
  while (st.horizons.size() > 10)
    st.horizons.pop_front();
}

/// Deletes what no kept checkpoint can make a recovery read: old driver
/// log segments and receiver WAL segments.
void clean_logs(generator_ptr self, time_ms keep_from) {
  auto& st = self->state;
  auto threshold = keep_from - st.interval;
  if (auto n = st.log->delete_older_than(threshold); !n)
    SLUICE_WARN("generator", "driver log cleanup: " << describe(n.error()));
  if (!st.settings.wal_enable)
    return;
  for (auto& n : st.g->nodes()) {
    if (n->kind() != node_kind::receiver_input)
      continue;
    auto root = receiver_wal_root(st.settings.checkpoint_dir, n->index());
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator{root, ec}) {
      if (!e.is_directory())
        continue;
      if (auto n = wal::delete_older_than(e.path().string(), threshold); !n)
        SLUICE_WARN("generator", "receiver WAL cleanup: " << describe(n.error()));
    }
  }
}

/// Releases the inputs of completed batches that remember() no longer
/// covers and no recovery can re-run.
void release_inputs(generator_ptr self, time_ms completed) {
  auto& st = self->state;
  auto keep_from = std::numeric_limits<time_ms>::max();
  if (st.checkpoints)
    keep_from = st.horizons.empty()
                  ? st.first_batch
                  : *std::min_element(st.horizons.begin(), st.horizons.end());
  bool released = false;
  while (!st.unreleased.empty() && st.unreleased.front() <= completed - st.remember
         && st.unreleased.front() < keep_from) {
    auto t = st.unreleased.front();
    st.unreleased.pop_front();
    // The tracker logs the cleanup, then drops the batch's blocks.
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::ReleaseBatch>().setBatchTime(t);
    self->send(st.tracker, make_msg<wire::ReleaseBatch>(b));
    for (auto& n : st.g->nodes())
      if (n->kind() == node_kind::queue_input)
        st.driver_store->erase({queue_block_id(n->index(), t)});
    released = true;
  }
  if (released && st.log)
    clean_logs(self, keep_from);
}

void recovery_finished(generator_ptr self) {
  auto& st = self->state;
  recovery_info info;
  info.what = recovery_info::kind::finished;
  info.checkpoint = st.plan->checkpoint_file;
  info.recomputed = st.plan->recompute.size();
  info.rerun = st.plan->rerun.size();
  st.listeners->recovery(info);
}

void batch_completed(generator_ptr self, const msg<wire::BatchCompleted>& m) {
  auto& st = self->state;
  batch_info info;
  if (auto err = read_msg(m, [&](wire::BatchCompleted::Reader r) {
        info.batch_time = r.getBatchTime();
        info.records = r.getRecords();
        info.bytes = r.getBytes();
        info.submitted = r.getSubmittedMs();
        info.started = r.getStartedMs();
        info.finished = r.getFinishedMs();
        info.failed_jobs = r.getFailedJobs();
        info.error = r.getError();
        for (auto x : r.getStates()) {
          auto* n = st.g->at(x.getNode());
          if (n != nullptr)
            st.states[x.getNode()] = state_checkpoint_ref{
              n->id(), x.getBatchTime(), x.getFile(), x.getPartitions()};
          st.state_times[x.getNode()] = x.getBatchTime();
        }
      })) {
    SLUICE_ERROR("generator", describe(err));
    return;
  }
  info.jobs = static_cast<uint32_t>(st.g->outputs().size());
  if (auto i = st.recomputing.find(info.batch_time); i != st.recomputing.end()) {
    st.recomputing.erase(i);
    if (info.failed_jobs == 0)
      SLUICE_INFO("generator", "recovery: state of batch " << info.batch_time
                                                           << " ms recomputed");
    else
      SLUICE_ERROR("generator", "recovery: recomputing batch "
                                  << info.batch_time << " ms failed: " << info.error);
  } else {
    if (info.failed_jobs == 0)
      SLUICE_INFO("generator", "batch " << info.batch_time << " ms: "
                                        << info.records << " records, scheduling delay "
                                        << info.scheduling_delay() << " ms, processing time "
                                        << info.processing_time() << " ms, total delay "
                                        << info.total_delay() << " ms");
    else
      SLUICE_ERROR("generator", "batch " << info.batch_time << " ms: "
                                         << info.records << " records, "
                                         << info.failed_jobs << " of " << info.jobs
                                         << " jobs failed (" << info.error
                                         << "), processing time "
                                         << info.processing_time() << " ms");
    st.listeners->batch_completed(info);
    st.max_completed = std::max(st.max_completed, info.batch_time);
  }
  st.in_flight.erase(info.batch_time);
  if (st.recovering.erase(info.batch_time) > 0 && st.recovering.empty())
    recovery_finished(self);
  st.unreleased.push_back(info.batch_time);
  write_checkpoint(self, info.batch_time);
  release_inputs(self, info.batch_time);
  maybe_finish_stop(self);
}

/// The scanner of directory stream `n`, made at first use.
directory_scanner& scanner_of(generator_ptr self, const node_base& n) {
  auto& scanners = self->state.scanners;
  auto i = scanners.find(n.index());
  if (i == scanners.end()) {
    auto& dir = static_cast<const directory_input_node&>(n).dir();
    i = scanners.emplace(n.index(), directory_scanner{dir}).first;
  }
  return i->second;
}

/// Adds the inputs the driver finds itself: new files and queued batches.
void add_driver_inputs(generator_ptr self, time_ms t, batch_inputs& inputs) {
  auto& st = self->state;
  for (auto& n : st.g->nodes()) {
    if (n->kind() == node_kind::directory_input) {
      auto found = scanner_of(self, *n).scan();
      for (auto& problem : found.problems)
        SLUICE_WARN("generator", "directory stream " << n->id() << ": " << problem
                                                     << " (kept pending; retried "
                                                        "every batch)");
      std::vector<input_partition> parts;
      for (auto& f : found.files) {
        input_partition p;
        p.is_file = true;
        p.file = f;
        parts.push_back(std::move(p));
      }
      inputs[n->index()] = std::move(parts);
    } else if (n->kind() == node_kind::queue_input) {
      auto* q = dynamic_cast<queue_input_base*>(n.get());
      std::vector<input_partition> parts;
      if (auto block = q->next_block()) {
        input_partition p;
        p.block.id = queue_block_id(n->index(), t);
        p.block.records = block->second;
        p.block.bytes = block->first.size();
        p.block.locations.push_back("driver");
        p.records = block->second;
        st.driver_store->put(p.block.id, stored_block{block->first, block->second});
        parts.push_back(std::move(p));
      }
      inputs[n->index()] = std::move(parts);
    }
  }
}

/// Hands batch `t` to the scheduler.
void send_jobset(generator_ptr self, time_ms t, const batch_inputs& inputs,
                 bool recompute) {
  auto& st = self->state;
  capnp::MallocMessageBuilder b;
  auto js = b.initRoot<wire::JobSet>();
  js.setBatchTime(t);
  js.setRecompute(recompute);
  // Set only in a graceful stop (final_batch of a hard stop is a batch
  // already generated): its state is checkpointed so that a restart
  // recomputes nothing.
  js.setFinalBatch(!recompute && st.final_requested && t == st.final_batch);
  encode_inputs(inputs, js.initInputs(static_cast<unsigned>(inputs.size())));
  if (recompute)
    st.recomputing.insert(t);
  else
    st.in_flight.insert(t);
  self->request(st.scheduler, caf::infinite, make_msg<wire::JobSet>(b))
    .then([self](const msg<wire::BatchCompleted>& done) { batch_completed(self, done); },
          [self, t](caf::error& err) {
            SLUICE_ERROR("generator", "batch " << t << " ms was not run: "
                                               << describe(err));
            self->state.in_flight.erase(t);
            self->state.recomputing.erase(t);
            maybe_finish_stop(self);
          });
}

/// Adds the blocks the tracker allocated to batch `t` to its `inputs`.
void add_blocks(time_ms t, const msg<wire::BlockAllocation>& alloc,
                batch_inputs& inputs) {
  auto err = read_msg(alloc, [&](wire::BlockAllocation::Reader r) {
    for (auto s : r.getStreams()) {
      auto& parts = inputs[s.getStream()];
      for (auto ref : s.getBlocks()) {
        input_partition p;
        p.block = decode(ref);
        p.records = p.block.records;
        parts.push_back(std::move(p));
      }
    }
  });
  if (err)
    SLUICE_ERROR("generator", "batch " << t << " ms: " << describe(err));
}

void submit(generator_ptr self, time_ms t, const batch_inputs& inputs) {
  auto& st = self->state;
  if (st.first_batch < 0)
    st.first_batch = t;
  send_jobset(self, t, inputs, false);
  write_checkpoint(self, t);
}

/// Starts a restarted driver: re-runs what the plan names, then resumes.
void recover(generator_ptr self) {
  auto& st = self->state;
  auto& plan = *st.plan;
  auto& allocations = plan.log.tracker.allocations();
  for (auto& pos : plan.meta.directories)
    if (auto* n = st.g->find(pos.node_id);
        n != nullptr && n->kind() == node_kind::directory_input)
      scanner_of(self, *n).mark_seen(pos.seen);
  for (auto& [key, value] : plan.meta.config)
    if (key == "first-batch-ms")
      st.first_batch = std::stoll(value);
  st.max_completed = plan.meta.last_completed_ms;
  for (auto& ref : plan.meta.states)
    if (auto* n = st.g->find(ref.node_id)) {
      st.states[n->index()] = ref;
      st.state_times[n->index()] = ref.batch_ms;
    }
  auto inputs_of = [&](time_ms t) {
    auto inputs = allocations.at(t);
    for (auto& [node, parts] : inputs) {
      auto* n = st.g->at(node);
      if (n != nullptr && n->kind() == node_kind::queue_input && !parts.empty()) {
        SLUICE_WARN("generator", "recovery: the queued data of " << n->id()
                                   << " for batch " << t
                                   << " ms died with the driver (queue streams "
                                      "are not recoverable)");
        parts.clear();
      }
      if (n != nullptr && n->kind() == node_kind::directory_input) {
        std::vector<std::string> files;
        for (auto& p : parts)
          files.push_back(p.file);
        scanner_of(self, *n).mark_seen(files);
      }
    }
    if (st.first_batch < 0 || t < st.first_batch)
      st.first_batch = t;
    return inputs;
  };
  for (auto t : plan.recompute)
    send_jobset(self, t, inputs_of(t), true);
  for (auto t : plan.rerun)
    send_jobset(self, t, inputs_of(t), false);
  SLUICE_INFO("generator", "recovered from " << plan.checkpoint_file << ": "
                                             << plan.recompute.size()
                                             << " batches recomputed for state, "
                                             << plan.rerun.size()
                                             << " pending batches re-run");
  recovery_info info;
  info.checkpoint = plan.checkpoint_file;
  info.recomputed = plan.recompute.size();
  info.rerun = plan.rerun.size();
  st.listeners->recovery(info);
  st.recovering.insert(plan.recompute.begin(), plan.recompute.end());
  st.recovering.insert(plan.rerun.begin(), plan.rerun.end());
  if (st.recovering.empty())
    recovery_finished(self);
}

void generate(generator_ptr self, time_ms t) {
  auto& st = self->state;
  st.generating = true;
  st.last_generated = t;
  // The tracker logs these with the blocks it allocates, as the batch's
  // one record, before it answers: a restarted driver re-runs the batch
  // with exactly these inputs.
  auto inputs = std::make_shared<batch_inputs>();
  add_driver_inputs(self, t, *inputs);
  capnp::MallocMessageBuilder b;
  auto req = b.initRoot<wire::AllocateBlocks>();
  req.setBatchTime(t);
  encode_inputs(*inputs, req.initOthers(static_cast<unsigned>(inputs->size())));
  self->request(st.tracker, std::chrono::seconds{60}, make_msg<wire::AllocateBlocks>(b))
    .then(
      [self, t, inputs](const msg<wire::BlockAllocation>& alloc) {
        add_blocks(t, alloc, *inputs);
        submit(self, t, *inputs);
        self->state.generating = false;
        generate_next(self);
      },
      [self, t, inputs](caf::error& err) {
        // Its files are taken and its queued data dequeued already: they
        // run (as a batch the log does not hold, so a driver restart could
        // not re-run it); its blocks stay unallocated for the next batch.
        SLUICE_ERROR("generator", "cannot allocate blocks to batch "
                                    << t << " ms (" << describe(err)
                                    << "): it runs without them, and a driver "
                                       "restart could not re-run it");
        submit(self, t, *inputs);
        self->state.generating = false;
        generate_next(self);
      });
}

void generate_next(generator_ptr self) {
  auto& st = self->state;
  if (st.generating)
    return;
  if (st.due.empty()) {
    if (st.final_requested && st.final_batch == 0) {
      // Graceful stop: every receiver has reported its last block, so the
      // next batch takes all of them. It waits for its time like any batch,
      // so batch times stay true.
      st.final_batch = st.last_generated + st.interval;
      st.clk->schedule(st.final_batch, caf::actor_cast<caf::actor>(self),
                       caf::make_message(batch_tick_atom::value, st.final_batch));
    }
    maybe_finish_stop(self);
    return;
  }
  auto t = st.due.front();
  st.due.pop_front();
  generate(self, t);
  if (st.final_batch == 0)
    st.clk->schedule(t + st.interval, caf::actor_cast<caf::actor>(self),
                     caf::make_message(batch_tick_atom::value, t + st.interval));
}

} // namespace

caf::behavior job_generator(generator_ptr self, graph* g, run_settings settings,
                            std::shared_ptr<clock> clk,
                            std::shared_ptr<listener_bus> listeners,
                            std::shared_ptr<block_store> driver_store,
                            caf::actor tracker, caf::actor scheduler,
                            time_ms remember, std::shared_ptr<driver_log> log,
                            std::shared_ptr<const recovery_plan> plan) {
  auto& st = self->state;
  st.g = g;
  st.settings = std::move(settings);
  st.clk = std::move(clk);
  st.listeners = std::move(listeners);
  st.driver_store = std::move(driver_store);
  st.tracker = std::move(tracker);
  st.scheduler = std::move(scheduler);
  st.interval = st.settings.batch_interval.count();
  st.remember = remember;
  st.log = std::move(log);
  st.plan = std::move(plan);
  if (!st.settings.checkpoint_dir.empty())
    st.checkpoints = std::make_unique<checkpoint_dir>(st.settings.checkpoint_dir);
  return {
    [self](start_atom) {
      auto& st = self->state;
      // Batch times are multiples of the interval; the first is the next one.
      auto first = (st.clk->now() / st.interval + 1) * st.interval;
      if (st.plan) {
        recover(self);
        // The batches that fell due while the driver was down come next.
        if (st.plan->last_generated >= 0)
          first = st.plan->last_generated + st.interval;
      }
      st.last_generated = first - st.interval;
      SLUICE_INFO("generator", "first batch at " << first << " ms, every "
                                                 << st.interval << " ms");
      st.clk->schedule(first, caf::actor_cast<caf::actor>(self),
                       caf::make_message(batch_tick_atom::value, first));
    },
    [self](batch_tick_atom, time_ms t) {
      auto& st = self->state;
      if (t <= st.last_generated || (st.final_batch != 0 && t != st.final_batch))
        return; // stale, or past the final batch of a stop
      if (std::find(st.due.begin(), st.due.end(), t) == st.due.end())
        st.due.push_back(t);
      generate_next(self);
    },
    [self](stop_atom, bool graceful) -> caf::result<bool> {
      auto& st = self->state;
      if (!graceful) {
        st.final_batch = st.last_generated;
        st.due.clear();
        return true;
      }
      if (st.stopping)
        return make_error(errc::refused, "already stopping");
      st.stopping = true;
      st.stopped = self->make_response_promise();
      self->request(st.tracker, std::chrono::seconds{60}, stop_receivers_atom::value)
        .then(
          [self](bool) {
            self->state.final_requested = true;
            generate_next(self);
          },
          [self](caf::error& err) {
            SLUICE_ERROR("generator", "receivers did not stop: " << describe(err));
            self->state.final_requested = true;
            generate_next(self);
          });
      return caf::delegated<bool>{};
    },
  };
}

} // namespace sluice
