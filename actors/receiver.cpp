#include "actors/receiver.hpp"

#include <algorithm>

#include <caf/send.hpp>

#include "actors/atoms.hpp"
#include "actors/put_block.hpp"
#include "actors/wal_appender.hpp"
#include "runtime/clock.hpp"
#include "messages/schemas.hpp"
#include "runtime/exec/task_spec.hpp"
#include "runtime/log.hpp"

namespace sluice {

const char* receiver_state::name = "receiver";

namespace {

using receiver_ptr = caf::stateful_actor<receiver_state>*;

msg<wire::ReceiverEvent> event(uint32_t stream, const std::string& node,
                               wire::ReceiverEvent::Kind kind,
                               const std::string& text) {
  capnp::MallocMessageBuilder b;
  auto ev = b.initRoot<wire::ReceiverEvent>();
  ev.setStream(stream);
  ev.setNode(node);
  ev.setKind(kind);
  ev.setMessage(text);
  return make_msg<wire::ReceiverEvent>(b);
}

/// Forwards a source's reports from the source thread to the receiver
/// (anon_send is thread-safe), which passes them to its current tracker,
/// and logs them.
class tracker_reporter : public source_reporter {
public:
  tracker_reporter(caf::actor receiver, uint32_t stream, std::string node,
                   std::string what)
    : receiver_(std::move(receiver)),
      stream_(stream),
      node_(std::move(node)),
      what_(std::move(what)) {
  }

  void started(const std::string& text) override {
    SLUICE_INFO("receiver", "stream " << stream_ << " on " << node_ << ": "
                                      << text);
    send(wire::ReceiverEvent::Kind::STARTED, text);
  }

  void error(const std::string& text) override {
    SLUICE_WARN("receiver", "stream " << stream_ << " on " << node_ << " ("
                                      << what_ << "): " << text);
    send(wire::ReceiverEvent::Kind::ERROR, text);
  }

private:
  void send(wire::ReceiverEvent::Kind kind, const std::string& text) {
    caf::anon_send(receiver_, event(stream_, node_, kind, text));
  }

  caf::actor receiver_;
  uint32_t stream_;
  std::string node_;
  std::string what_;
};

/// Ends the receiver once it is stopping and the tracker acknowledged every
/// block: ending before would drop blocks whose AddBlock may never have
/// arrived (a receiver handing over after its node was cut off re-sends
/// them to the tracker it was just given).
void maybe_finish_stop(receiver_ptr self) {
  auto& st = self->state;
  if (!st.stopping || !st.pending->empty())
    return;
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::ReceiverStopped>();
  r.setStream(st.stream);
  r.setBlocks(st.pending->blocks_reported());
  r.setRecords(st.pending->records_reported());
  SLUICE_INFO("receiver", "stream " << st.stream << " on " << st.node << " stopped after "
                                    << st.pending->records_reported() << " records in "
                                    << st.pending->blocks_reported() << " blocks");
  if (st.stopped.pending())
    st.stopped.deliver(make_msg<wire::ReceiverStopped>(b));
  if (!st.source_failure.empty())
    self->quit(make_error(errc::source_failed, "the source of stream "
                                                 + std::to_string(st.stream)
                                                 + " failed: " + st.source_failure));
  else
    self->quit();
}

/// Sends AddBlock for `ref` to the current tracker; the block stays pending
/// until acknowledged.
void report(receiver_ptr self, const block_ref& ref) {
  auto& st = self->state;
  if (!st.tracker)
    return;
  capnp::MallocMessageBuilder out;
  auto add = out.initRoot<wire::AddBlock>();
  add.setStream(st.stream);
  encode(ref, add.initBlock());
  auto tracker = st.tracker;
  auto id = ref.id;
  self->request(tracker, std::chrono::seconds{10}, make_msg<wire::AddBlock>(out))
    .then(
      [self, id](const msg<wire::AddBlockAck>&) {
        self->state.pending->acked(id);
        self->state.ack_failures = 0;
        maybe_finish_stop(self);
      },
      [self, id, tracker](caf::error& err) {
        // Kept: re-sent when a restarted driver adopts this receiver, or
        // after a pause if the tracker is alive but refused it. Said once
        // per streak: a driver outage would otherwise flood the log.
        auto& st = self->state;
        if (st.tracker == tracker && st.pending->reported_ref(id) != nullptr) {
          if (st.ack_failures++ == 0)
            SLUICE_WARN("receiver", "stream " << st.stream << ": block " << id
                                              << " not acknowledged ("
                                              << describe(err)
                                              << "); blocks are kept and re-sent");
          self->delayed_send(self, std::chrono::seconds{1}, resend_atom::value, id);
        }
      });
}

/// How each copy of a received block is kept: bytes already (serialized),
/// and at a disk level allowed to spill when its BlockManager is over its
/// memory budget. The second copy is this receiver's own put, not the
/// BlockManager's.
storage_level copy_level(const receiver_state& st) {
  return st.use_disk ? storage_level::memory_and_disk_ser()
                     : storage_level::memory_only_ser();
}

void apply(receiver_ptr self, pending_effects fx);

void put_local(receiver_ptr self, const std::string& id) {
  auto& st = self->state;
  auto* bytes = st.pending->bytes(id);
  if (bytes == nullptr)
    return;
  self->request(st.block_manager, std::chrono::seconds{30},
                put_block(id, st.pending->records(id), copy_level(st), *bytes))
    .then(
      [self, id](const msg<wire::PutBlockAck>& ack) {
        auto& st = self->state;
        std::string where = st.node;
        if (auto err = read_msg(ack, [&](wire::PutBlockAck::Reader r) {
              where = r.getNode();
            }))
          SLUICE_ERROR("receiver", "bad PutBlockAck: " << describe(err));
        apply(self, st.pending->stored(id, where));
      },
      [self, id](caf::error& err) {
        // The replica and the WAL may still hold it: pending_blocks decides
        // once they are done.
        auto& st = self->state;
        SLUICE_ERROR("receiver", "stream " << st.stream << ": cannot store block "
                                           << id << " locally: " << describe(err));
        apply(self, st.pending->stored(id, ""));
      });
}

/// A replica put that takes longer counts as failed and moves to the next
/// peer (a peer that is lost is noticed sooner: ReceiverPeers drops it).
constexpr auto replica_put_timeout = std::chrono::seconds{10};

void put_replica(receiver_ptr self, const pending_effects::replica_put& put) {
  auto& st = self->state;
  auto* bytes = st.pending->bytes(put.id);
  auto peer = st.peers.find(put.peer);
  if (bytes == nullptr || peer == st.peers.end())
    return;
  auto id = put.id;
  auto attempt = put.attempt;
  auto target = put.peer;
  self->request(peer->second, replica_put_timeout,
                put_block(id, st.pending->records(id), copy_level(st), *bytes))
    .then(
      [self, id, attempt, target](const msg<wire::PutBlockAck>& ack) {
        std::string where = target;
        if (auto err = read_msg(ack, [&](wire::PutBlockAck::Reader r) {
              where = r.getNode();
            }))
          SLUICE_WARN("receiver", "bad PutBlockAck: " << describe(err));
        apply(self, self->state.pending->replica_stored(id, attempt, where));
      },
      [self, id, attempt, target](caf::error& err) {
        auto& st = self->state;
        pending_effects next;
        if (st.pending->replica_failed(id, attempt, next)) {
          SLUICE_WARN("receiver", "stream " << st.stream << ": cannot copy block "
                                            << id << " to " << target << " ("
                                            << describe(err) << "); next peer");
          apply(self, std::move(next));
        }
      });
}

void append_to_wal(receiver_ptr self, const std::string& id) {
  auto& st = self->state;
  auto* bytes = st.pending->bytes(id);
  if (bytes == nullptr)
    return;
  self->request(st.wal, caf::infinite, wal_append_atom::value, *bytes,
                system_clock{}.now())
    .then(
      [self, id](const std::string& segment, uint64_t offset, uint32_t length) {
        auto& st = self->state;
        apply(self, st.pending->wal_appended(id, wal_ref{st.wal_dir, segment,
                                                         offset, length}));
      },
      [self, id](caf::error& err) {
        // Held, not reported, and retried at the next block tick: a full
        // disk delays blocks instead of losing them.
        auto& st = self->state;
        if (!st.pending->wal_failed(id))
          return;
        auto text = "cannot write block " + id + " to the WAL: " + describe(err)
                    + " (blocks are held and retried; none is reported "
                      "until written)";
        SLUICE_ERROR("receiver", "stream " << st.stream << ": " << text);
        if (st.tracker)
          self->send(st.tracker, event(st.stream, st.node,
                                       wire::ReceiverEvent::Kind::ERROR, text));
      });
}

/// Performs what pending_blocks decided.
void apply(receiver_ptr self, pending_effects fx) {
  auto& st = self->state;
  if (fx.wal_recovered)
    SLUICE_INFO("receiver", "stream " << st.stream << ": the WAL accepts blocks again");
  if (!fx.degraded.empty())
    SLUICE_WARN("receiver", "stream " << st.stream << " on " << st.node
                                      << ": replication degraded to one copy ("
                                      << fx.degraded << ")");
  if (fx.replicated_again)
    SLUICE_INFO("receiver", "stream " << st.stream << " on " << st.node
                                      << ": blocks have two copies again");
  for (auto& id : fx.lost)
    SLUICE_ERROR("receiver", "stream " << st.stream << ": block " << id
                                       << " could not be stored anywhere; "
                                          "its records are lost");
  for (auto& id : fx.local_puts)
    put_local(self, id);
  for (auto& id : fx.wal_appends)
    append_to_wal(self, id);
  for (auto& put : fx.replica_puts)
    put_replica(self, put);
  for (auto& ref : fx.reports)
    report(self, ref);
  maybe_finish_stop(self);
}

/// Cuts what the source buffered into a block and writes its copies.
void cut_and_store(receiver_ptr self) {
  auto& st = self->state;
  auto cut = st.generator->cut();
  if (!cut)
    return;
  block_ref ref;
  ref.id = "in/" + std::to_string(st.stream) + "/" + st.node + "/"
           + std::to_string(st.incarnation) + "/" + std::to_string(st.next_seq++);
  ref.records = cut->records;
  ref.bytes = cut->bytes.size();
  apply(self, st.pending->cut(std::move(ref), std::move(cut->bytes)));
}

/// Takes the tracker's list of peers.
void set_peers(receiver_ptr self, const msg<wire::ReceiverPeers>& m) {
  auto& st = self->state;
  uint8_t replication = 1;
  std::vector<std::string> nodes;
  if (auto err = read_msg(m, [&](wire::ReceiverPeers::Reader r) {
        replication = r.getReplication();
        for (auto n : r.getNodes())
          nodes.emplace_back(n);
      })) {
    SLUICE_WARN("receiver", describe(err));
    return;
  }
  st.peers.clear();
  std::vector<std::string> listed;
  for (size_t i = 0; i < nodes.size() && i < m.caps.size(); ++i)
    if (m.caps[i] && nodes[i] != st.node) {
      st.peers.emplace(nodes[i], m.caps[i]);
      listed.push_back(nodes[i]);
    }
  apply(self, st.pending->set_peers(replication, std::move(listed)));
}

/// A restarted driver adopted this receiver, or its node hands it over:
/// what the old tracker never acknowledged goes to the new one (which
/// ignores what it already has).
void set_tracker(receiver_ptr self, caf::actor tracker) {
  auto& st = self->state;
  st.tracker = std::move(tracker);
  for (auto& ref : st.pending->reported())
    report(self, ref);
}

/// Ends the receiver once it is stopping and every block it cut is
/// acknowledged: asked to stop (the promise is answered), handed over, or
/// its source ended.
void begin_stop(receiver_ptr self) {
  auto& st = self->state;
  st.stopping = true;
  // Join first: after this no record can arrive, so the last cut takes
  // everything the source ever pushed.
  st.join_source();
  apply(self, st.pending->stop());
  cut_and_store(self);
  maybe_finish_stop(self);
}

} // namespace

receiver_state::~receiver_state() {
  join_source();
}

void receiver_state::join_source() {
  if (stop)
    stop->request_stop();
  if (generator)
    generator->interrupt();
  if (thread.joinable())
    thread.join();
}

caf::behavior receiver(receiver_ptr self, uint32_t stream, std::string node,
                       caf::actor tracker, caf::actor block_manager,
                       source_ptr src, receiver_options opts) {
  auto& st = self->state;
  st.stream = stream;
  st.node = std::move(node);
  st.incarnation = opts.incarnation;
  st.use_disk = opts.use_disk;
  st.tracker = std::move(tracker);
  st.block_manager = std::move(block_manager);
  st.block_interval = opts.block_interval;
  st.pending = std::make_unique<pending_blocks>(!opts.wal_dir.empty());
  auto block_interval = opts.block_interval;
  if (!opts.wal_dir.empty()) {
    st.wal_dir = opts.wal_dir;
    st.wal = self->spawn<caf::detached + caf::linked>(wal_appender, opts.wal_dir,
                                                      opts.wal_rolling);
  }
  st.generator = std::make_unique<block_generator>(opts.max_rate);
  st.stop = std::make_unique<stop_signal>();
  st.src = std::move(src);
  st.reporter = std::make_unique<tracker_reporter>(
    caf::actor_cast<caf::actor>(self), stream, st.node, st.src->describe());
  // A source is user code: what it throws ends this receiver with an error
  // (the tracker restarts it elsewhere) instead of terminating the process.
  st.thread = std::thread{[src = st.src.get(), gen = st.generator.get(),
                           stop = st.stop.get(), rep = st.reporter.get(),
                           me = caf::actor_cast<caf::actor>(self)] {
    std::string failure;
    try {
      src->run(*gen, *stop, *rep);
    } catch (const std::exception& e) {
      failure = *e.what() != '\0' ? e.what() : "an exception without a message";
    } catch (...) {
      failure = "an exception that is not a std::exception";
    }
    if (!stop->stop_requested())
      caf::anon_send(me, source_ended_atom::value, failure);
  }};
  self->delayed_send(self, block_interval, block_tick_atom::value);
  return {
    [self](block_tick_atom) {
      // Ticks go on while stopping: blocks the WAL refused are retried
      // until written, then the stop completes.
      apply(self, self->state.pending->retry_wal());
      if (!self->state.stopping)
        cut_and_store(self);
      self->delayed_send(self, self->state.block_interval,
                         block_tick_atom::value);
    },
    [self](const msg<wire::ReceiverEvent>& ev) {
      if (self->state.tracker)
        self->send(self->state.tracker, ev);
    },
    [self](set_tracker_atom, caf::actor tracker) {
      set_tracker(self, std::move(tracker));
    },
    [self](hand_over_atom, caf::actor tracker, bool store_dropped)
      -> caf::result<msg<wire::ReceiverStopped>> {
      // Its node leaves (a new incarnation, dropping its store) or the
      // stream runs elsewhere: pending_blocks decides what is put again and
      // which second copies are given up; every block not acknowledged goes
      // to `tracker`, whose handle is fresh.
      auto& st = self->state;
      if (st.stopping)
        return make_error(errc::refused, "receiver is already stopping");
      st.peers.clear();
      auto fx = st.pending->hand_over(store_dropped ? st.node : std::string{});
      fx.reports.clear(); // set_tracker reports every reported block
      st.stopped = self->make_response_promise();
      st.tracker = caf::actor{}; // nothing goes to the old one meanwhile
      apply(self, std::move(fx));
      set_tracker(self, std::move(tracker));
      begin_stop(self);
      return caf::delegated<msg<wire::ReceiverStopped>>{};
    },
    [self](resend_atom, const std::string& id) {
      if (auto* ref = self->state.pending->reported_ref(id))
        report(self, *ref);
    },
    [self](const msg<wire::ReceiverPeers>& m) { set_peers(self, m); },
    [self](source_ended_atom, const std::string& failure) {
      auto& st = self->state;
      if (st.stopping)
        return;
      if (failure.empty()) {
        SLUICE_INFO("receiver", "stream " << st.stream << " on " << st.node
                                          << ": the source ended by itself");
      } else {
        st.source_failure = failure;
        auto text = "the source failed: " + failure
                    + " (the receiver stores what it buffered, then ends)";
        SLUICE_ERROR("receiver", "stream " << st.stream << " on " << st.node
                                           << ": " << text);
        if (st.tracker)
          self->send(st.tracker, event(st.stream, st.node,
                                       wire::ReceiverEvent::Kind::ERROR, text));
      }
      begin_stop(self);
    },
    [self](const msg<wire::StopReceiver>&)
      -> caf::result<msg<wire::ReceiverStopped>> {
      auto& st = self->state;
      if (st.stopping)
        return make_error(errc::refused, "receiver is already stopping");
      st.stopped = self->make_response_promise();
      begin_stop(self);
      return caf::delegated<msg<wire::ReceiverStopped>>{};
    },
  };
}

} // namespace sluice
