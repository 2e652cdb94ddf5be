#include "actors/task_runner.hpp"

#include <chrono>

#include "actors/atoms.hpp"
#include "actors/put_block.hpp"
#include "messages/schemas.hpp"
#include "runtime/block.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/log.hpp"
#include "runtime/wal/wal.hpp"

namespace sluice {

const char* task_runner_state::name = "task_runner";

namespace {

using runner_ptr = caf::stateful_actor<task_runner_state>*;

msg<wire::TaskResult> make_result(runner_ptr self, const caf::error& err,
                                  task_context* ctx) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::TaskResult>();
  r.setOk(!err);
  r.setNode(self->state.node);
  uint32_t switches = 0;
  for (auto& f : self->state.fetches)
    switches += f.failed_locations;
  r.setReplicaSwitches(switches);
  buffer payload;
  if (err) {
    r.setError(describe(err));
  } else if (ctx != nullptr) {
    r.setInputRecords(ctx->input_records());
    auto& outs = ctx->shuffle_outputs();
    auto list = r.initShuffleOutputs(static_cast<unsigned>(outs.size()));
    for (unsigned i = 0; i < outs.size(); ++i) {
      list[i].setReducer(outs[i].bucket);
      list[i].setId(outs[i].id);
      list[i].setRecords(outs[i].records);
      list[i].setBytes(outs[i].bytes);
      list[i].setReplica(outs[i].replica);
    }
    payload = ctx->result();
  }
  return make_msg<wire::TaskResult>(b, std::move(payload));
}

void finish(runner_ptr self, const caf::error& err, task_context* ctx) {
  auto& st = self->state;
  self->send(st.executor, task_done_atom::value, st.id, make_result(self, err, ctx));
  self->quit();
}

const caf::actor* peer_of(runner_ptr self, const std::string& node);

/// Copies the partitions a cache task stored to the replica node, then
/// finishes. A copy that fails is logged and left out: the partition keeps
/// one copy (the level degrades, the result does not).
void replicate_and_finish(runner_ptr self) {
  auto& st = self->state;
  auto* bm = peer_of(self, st.spec.replica_node);
  auto& outs = st.ctx->shuffle_outputs();
  if (bm == nullptr || outs.empty()) {
    if (bm == nullptr)
      SLUICE_WARN("task", st.spec.describe() << ": no BlockManager for replica node "
                                             << st.spec.replica_node);
    finish(self, caf::none, st.ctx.get());
    return;
  }
  st.replicas_pending = outs.size();
  for (size_t i = 0; i < outs.size(); ++i) {
    auto done = [self] {
      if (--self->state.replicas_pending == 0)
        finish(self, caf::none, self->state.ctx.get());
    };
    // Deserialized partitions are encoded here, for the copy only; a
    // partition spilled meanwhile is read back from its file.
    auto block = st.ctx->store().get_encoded(outs[i].id);
    if (!block) {
      SLUICE_WARN("task", st.spec.describe() << ": cannot copy a cached partition to "
                                             << st.spec.replica_node << ": "
                                             << describe(block.error()));
      done();
      continue;
    }
    self->request(*bm, block_read_timeout,
                  put_block(outs[i].id, outs[i].records, st.spec.level, block->bytes))
      .then(
        [self, i, done](const msg<wire::PutBlockAck>&) {
          auto& st = self->state;
          st.ctx->shuffle_outputs()[i].replica = st.spec.replica_node;
          done();
        },
        [self, done](caf::error& err) {
          SLUICE_WARN("task", self->state.spec.describe()
                                << ": cannot copy a cached partition to "
                                << self->state.spec.replica_node << ": "
                                << describe(err));
          done();
        });
  }
}

void run_task(runner_ptr self) {
  auto& st = self->state;
  st.ctx = std::make_unique<task_context>(st.spec.batch_time, st.spec.partition,
                                          st.spec.attempt, st.spec.counts,
                                          st.node, st.store);
  auto& ctx = *st.ctx;
  for (auto& r : st.spec.reads)
    if (r.source == leaf_read::kind::file)
      ctx.add_file(r.node, r.partition, r.file);
  // Shuffle reads may list no block at all (no map task wrote that bucket);
  // the leaf partition still exists and is empty.
  for (auto& r : st.spec.reads)
    if (r.source == leaf_read::kind::shuffle)
      ctx.add_blocks(r.node, r.partition, {}, r.side);
  for (auto& f : st.fetches)
    ctx.add_block(f.leaf, f.partition, std::move(f.block), f.side);
  auto err = execute_task(*st.g, st.spec, ctx);
  if (!err && st.spec.action == task_action::cache && !st.spec.replica_node.empty()) {
    replicate_and_finish(self);
    return;
  }
  finish(self, err, &ctx);
}

const caf::actor* peer_of(runner_ptr self, const std::string& node) {
  for (auto& [name, cap] : self->state.spec.peers)
    if (name == node && cap < self->state.caps.size())
      return &self->state.caps[cap];
  return nullptr;
}

void fetch(runner_ptr self, size_t i);

void fetched(runner_ptr self) {
  if (--self->state.outstanding == 0 && !self->state.failed)
    run_task(self);
}

void read_from_wal(runner_ptr self, size_t i);

void fetch(runner_ptr self, size_t i) {
  auto& st = self->state;
  auto& f = st.fetches[i];
  f.started = std::chrono::steady_clock::now();
  // The local store first: it may hold a replica the driver does not list.
  auto local = st.store->get(f.ref.id);
  if (local) {
    f.block = std::move(*local);
    f.done = true;
    fetched(self);
    return;
  }
  if (local.error().code() != static_cast<uint8_t>(errc::not_found))
    f.failed(st.node + ": " + describe(local.error()));
  read_next_copy(
    self, [self, i]() -> block_read& { return self->state.fetches[i]; },
    [self](const std::string& loc) { return peer_of(self, loc); }, st.node,
    [self, i](const buffer& bytes, const std::string& loc) {
      auto& item = self->state.fetches[i];
      if (item.failed_locations > 0) {
        using namespace std::chrono;
        auto ms = duration_cast<microseconds>(steady_clock::now() - item.started)
                    .count() / 1000.0;
        SLUICE_INFO("task", self->state.spec.describe()
                              << ": block " << item.ref.id << " read from " << loc
                              << " after " << item.failed_locations
                              << " failed location(s) in " << ms << " ms ("
                              << item.failures << ")");
      }
      item.block = stored_block{bytes, item.ref.records};
      item.done = true;
      fetched(self);
    },
    [self, i] { read_from_wal(self, i); });
}

/// Every copy failed: the receiver WAL is the last resort (the runner is
/// detached, so this blocking read holds no scheduler thread).
void read_from_wal(runner_ptr self, size_t i) {
  auto& st = self->state;
  auto& f = st.fetches[i];
  if (!f.ref.wal.segment.empty() && !f.wal_tried) {
    f.wal_tried = true;
    wal::handle h{f.ref.wal.segment, f.ref.wal.offset, f.ref.wal.length};
    auto bytes = wal::read(f.ref.wal.dir, h);
    if (bytes) {
      ++st.wal_reads;
      SLUICE_INFO("task", st.spec.describe() << ": block " << f.ref.id
                                             << " read from the WAL ("
                                             << f.failures << ")");
      f.block = stored_block{std::move(*bytes), f.ref.records};
      f.done = true;
      fetched(self);
      return;
    }
    if (!f.failures.empty())
      f.failures += "; ";
    f.failures += "WAL: " + describe(bytes.error());
  }
  st.failed = true;
  finish(self,
         make_error(errc::task_failed,
                    st.spec.describe() + ": cannot read block " + f.ref.id
                      + " from any location ("
                      + (f.failures.empty() ? "none listed" : f.failures) + ")"),
         nullptr);
}

} // namespace

caf::behavior task_runner(runner_ptr self, task_spec spec,
                          std::vector<caf::actor> caps, std::string node,
                          graph* g, std::shared_ptr<block_store> store,
                          caf::actor executor, uint64_t id) {
  auto& st = self->state;
  st.spec = std::move(spec);
  st.caps = std::move(caps);
  st.node = std::move(node);
  st.g = g;
  st.store = std::move(store);
  st.executor = std::move(executor);
  st.id = id;
  for (auto& r : st.spec.reads) {
    if (r.source == leaf_read::kind::block) {
      fetch_item f;
      f.leaf = r.node;
      f.partition = r.partition;
      f.side = r.side;
      f.ref = r.block;
      st.fetches.push_back(std::move(f));
    } else if (r.source == leaf_read::kind::shuffle) {
      for (auto& ref : r.shuffle) {
        fetch_item f;
        f.leaf = r.node;
        f.partition = r.partition;
        f.side = r.side;
        f.ref = ref;
        st.fetches.push_back(std::move(f));
      }
    }
  }
  self->send(self, start_atom::value);
  return {
    [self](start_atom) {
      auto& st = self->state;
      st.outstanding = st.fetches.size();
      if (st.outstanding == 0) {
        run_task(self);
        return;
      }
      for (size_t i = 0; i < st.fetches.size() && !st.failed; ++i)
        fetch(self, i);
    },
  };
}

} // namespace sluice
