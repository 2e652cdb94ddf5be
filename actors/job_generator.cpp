#include "actors/job_generator.hpp"

#include "actors/atoms.hpp"
#include "messages/schemas.hpp"
#include "runtime/exec/planner.hpp"
#include "runtime/log.hpp"
#include "runtime/nodes/input_nodes.hpp"

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
      && !st.generating && st.in_flight.empty() && st.due.empty()) {
    st.stopped.deliver(true);
    st.stopping = false;
  }
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
      })) {
    SLUICE_ERROR("generator", describe(err));
    return;
  }
  info.jobs = static_cast<uint32_t>(st.g->outputs().size());
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
  // A batch's input blocks go once remember() no longer covers them.
  st.unreleased.push_back(info.batch_time);
  while (!st.unreleased.empty()
         && st.unreleased.front() <= info.batch_time - st.remember) {
    auto t = st.unreleased.front();
    st.unreleased.pop_front();
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::ReleaseBatch>().setBatchTime(t);
    self->send(st.tracker, make_msg<wire::ReleaseBatch>(b));
    for (auto& n : st.g->nodes())
      if (n->kind() == node_kind::queue_input)
        st.driver_store->erase({queue_block_id(n->index(), t)});
  }
  st.in_flight.erase(info.batch_time);
  maybe_finish_stop(self);
}

/// Adds the inputs the driver finds itself: new files and queued batches.
void add_driver_inputs(generator_ptr self, time_ms t,
                       std::vector<std::pair<uint32_t, std::vector<input_partition>>>& inputs) {
  auto& st = self->state;
  for (auto& n : st.g->nodes()) {
    if (n->kind() == node_kind::directory_input) {
      auto& dir = static_cast<directory_input_node&>(*n).dir();
      auto i = st.scanners.find(n->index());
      if (i == st.scanners.end())
        i = st.scanners.emplace(n->index(), directory_scanner{dir}).first;
      auto found = i->second.scan();
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
      inputs.emplace_back(n->index(), std::move(parts));
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
      inputs.emplace_back(n->index(), std::move(parts));
    }
  }
}

void submit(generator_ptr self, time_ms t, const msg<wire::BlockAllocation>& alloc) {
  auto& st = self->state;
  std::vector<std::pair<uint32_t, std::vector<input_partition>>> inputs;
  auto err = read_msg(alloc, [&](wire::BlockAllocation::Reader r) {
    for (auto s : r.getStreams()) {
      std::vector<input_partition> parts;
      for (auto ref : s.getBlocks()) {
        input_partition p;
        p.block = decode(ref);
        p.records = p.block.records;
        parts.push_back(std::move(p));
      }
      inputs.emplace_back(s.getStream(), std::move(parts));
    }
  });
  if (err)
    SLUICE_ERROR("generator", "batch " << t << " ms: " << describe(err));
  capnp::MallocMessageBuilder b;
  auto js = b.initRoot<wire::JobSet>();
  js.setBatchTime(t);
  add_driver_inputs(self, t, inputs);
  auto list = js.initInputs(static_cast<unsigned>(inputs.size()));
  for (unsigned i = 0; i < inputs.size(); ++i) {
    list[i].setNode(inputs[i].first);
    auto parts = list[i].initPartitions(static_cast<unsigned>(inputs[i].second.size()));
    for (unsigned j = 0; j < inputs[i].second.size(); ++j) {
      auto& p = inputs[i].second[j];
      parts[j].setRecords(p.records);
      if (p.is_file)
        parts[j].setFile(p.file);
      else
        encode(p.block, parts[j].initBlock());
    }
  }
  st.in_flight.insert(t);
  self->request(st.scheduler, caf::infinite, make_msg<wire::JobSet>(b))
    .then([self](const msg<wire::BatchCompleted>& done) { batch_completed(self, done); },
          [self, t](caf::error& err) {
            SLUICE_ERROR("generator", "batch " << t << " ms was not run: "
                                               << describe(err));
            self->state.in_flight.erase(t);
            maybe_finish_stop(self);
          });
}

void generate(generator_ptr self, time_ms t) {
  auto& st = self->state;
  st.generating = true;
  st.last_generated = t;
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::AllocateBlocks>().setBatchTime(t);
  self->request(st.tracker, std::chrono::seconds{60}, make_msg<wire::AllocateBlocks>(b))
    .then(
      [self, t](const msg<wire::BlockAllocation>& alloc) {
        submit(self, t, alloc);
        self->state.generating = false;
        generate_next(self);
      },
      [self, t](caf::error& err) {
        SLUICE_ERROR("generator", "cannot allocate blocks to batch "
                                    << t << " ms: " << describe(err));
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
                            time_ms remember) {
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
  return {
    [self](start_atom) {
      auto& st = self->state;
      // Batch times are multiples of the interval; the first is the next one.
      auto first = (st.clk->now() / st.interval + 1) * st.interval;
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
