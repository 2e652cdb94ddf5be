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

/// A replica put that takes longer counts as failed and moves to the next
/// peer (a peer that is lost is noticed sooner: ReceiverPeers drops it).
constexpr auto replica_put_timeout = std::chrono::seconds{10};

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

void maybe_finish_stop(receiver_ptr self) {
  auto& st = self->state;
  // A block leaves `unacked` once the tracker acknowledged it: ending
  // before that would drop blocks whose AddBlock may never have arrived (a
  // receiver handing over after its node was cut off re-sends them to the
  // tracker it was just given).
  if (!st.stopping || st.pending_puts > 0 || !st.unacked.empty())
    return;
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::ReceiverStopped>();
  r.setStream(st.stream);
  r.setBlocks(st.blocks);
  r.setRecords(st.records);
  SLUICE_INFO("receiver", "stream " << st.stream << " on " << st.node
                                    << " stopped after " << st.records
                                    << " records in " << st.blocks << " blocks");
  if (st.stopped.pending())
    st.stopped.deliver(make_msg<wire::ReceiverStopped>(b));
  if (!st.source_failure.empty())
    self->quit(make_error(errc::source_failed, "the source of stream "
                                                 + std::to_string(st.stream)
                                                 + " failed: " + st.source_failure));
  else
    self->quit();
}

/// Sends AddBlock for `id` to the current tracker; the block stays pending
/// until acknowledged.
void report(receiver_ptr self, const std::string& id) {
  auto& st = self->state;
  auto i = st.unacked.find(id);
  if (i == st.unacked.end() || !st.tracker)
    return;
  i->second.reported = true;
  capnp::MallocMessageBuilder out;
  auto add = out.initRoot<wire::AddBlock>();
  add.setStream(st.stream);
  encode(i->second.ref, add.initBlock());
  auto tracker = st.tracker;
  self->request(tracker, std::chrono::seconds{10}, make_msg<wire::AddBlock>(out))
    .then(
      [self, id](const msg<wire::AddBlockAck>&) {
        self->state.unacked.erase(id);
        self->state.ack_failures = 0;
        maybe_finish_stop(self);
      },
      [self, id, tracker](caf::error& err) {
        // Kept: re-sent when a restarted driver adopts this receiver, or
        // after a pause if the tracker is alive but refused it. Said once
        // per streak: a driver outage would otherwise flood the log.
        auto& st = self->state;
        if (st.tracker == tracker && st.unacked.count(id) > 0) {
          if (st.ack_failures++ == 0)
            SLUICE_WARN("receiver", "stream " << st.stream << ": block " << id
                                              << " not acknowledged ("
                                              << describe(err)
                                              << "); blocks are kept and re-sent");
          self->delayed_send(self, std::chrono::seconds{1}, resend_atom::value, id);
        }
      });
}

void replicate(receiver_ptr self, const std::string& id);

/// How each copy of a received block is kept: bytes already (serialized),
/// and at a disk level allowed to spill when its BlockManager is over its
/// memory budget. The second copy is this receiver's own put, not the
/// BlockManager's.
storage_level copy_level(const receiver_state& st) {
  return st.use_disk ? storage_level::memory_and_disk_ser()
                     : storage_level::memory_only_ser();
}

/// Reports a block once every copy it will have is written: the local
/// BlockManager's, the replica's (or replication gave up) and the WAL's.
void maybe_report(receiver_ptr self, const std::string& id) {
  auto& st = self->state;
  auto i = st.unacked.find(id);
  if (i == st.unacked.end())
    return;
  auto& b = i->second;
  if (!b.stored || !b.logged || !b.replicated || b.reported)
    return;
  b.ref.locations.clear();
  if (!b.local_node.empty())
    b.ref.locations.push_back(b.local_node);
  if (!b.replica_node.empty() && b.replica_node != b.local_node)
    b.ref.locations.push_back(b.replica_node);
  if (b.ref.locations.empty() && b.ref.wal.segment.empty()) {
    // Nothing holds it, so it is not reported: the tracker never learns of
    // data that is not held anywhere.
    SLUICE_ERROR("receiver", "stream " << st.stream << ": block " << id
                                       << " could not be stored anywhere; "
                                          "its records are lost");
    st.unacked.erase(i);
    maybe_finish_stop(self);
    return;
  }
  b.bytes = buffer{}; // every copy is written now
  ++st.blocks;
  st.records += b.ref.records;
  report(self, id);
  maybe_finish_stop(self);
}

/// Puts the second copy of `id` on the next peer (round robin), unless the
/// replication is not known yet (no ReceiverPeers so far) or one copy is
/// wanted. Each peer is tried once per block; when all failed, or there is
/// none, the block keeps one copy and the log says so once per streak.
void replicate(receiver_ptr self, const std::string& id) {
  auto& st = self->state;
  auto i = st.unacked.find(id);
  if (i == st.unacked.end() || st.replication == 0 || i->second.replicated
      || i->second.replica_attempt != 0)
    return;
  auto& b = i->second;
  if (st.replication < 2) {
    b.replicated = true;
    maybe_report(self, id);
    return;
  }
  if (b.replica_tries >= st.peers.size()) {
    if (!st.degraded) {
      st.degraded = true;
      SLUICE_WARN("receiver", "stream " << st.stream << " on " << st.node
                                        << ": replication degraded to one copy ("
                                        << (st.peers.empty()
                                              ? "no other live worker"
                                              : "no other worker took block " + id)
                                        << ")");
    }
    b.replicated = true;
    maybe_report(self, id);
    return;
  }
  auto peer = st.peers[st.next_peer++ % st.peers.size()];
  ++b.replica_tries;
  auto attempt = b.replica_attempt = ++st.replica_attempts;
  b.replica_target = peer.node;
  self->request(peer.block_manager, replica_put_timeout,
                put_block(id, b.ref.records, copy_level(st), b.bytes))
    .then(
      [self, id, attempt](const msg<wire::PutBlockAck>& ack) {
        auto& st = self->state;
        auto i = st.unacked.find(id);
        if (i == st.unacked.end() || i->second.replica_attempt != attempt)
          return; // given up meanwhile (the peer left)
        std::string where = i->second.replica_target;
        if (auto err = read_msg(ack, [&](wire::PutBlockAck::Reader r) {
              where = r.getNode();
            }))
          SLUICE_WARN("receiver", "bad PutBlockAck: " << describe(err));
        i->second.replica_attempt = 0;
        i->second.replica_node = where;
        i->second.replicated = true;
        if (st.degraded) {
          st.degraded = false;
          SLUICE_INFO("receiver", "stream " << st.stream << " on " << st.node
                                            << ": blocks have two copies again");
        }
        maybe_report(self, id);
      },
      [self, id, attempt](caf::error& err) {
        auto& st = self->state;
        auto i = st.unacked.find(id);
        if (i == st.unacked.end() || i->second.replica_attempt != attempt)
          return;
        SLUICE_WARN("receiver", "stream " << st.stream << ": cannot copy block "
                                          << id << " to "
                                          << i->second.replica_target << " ("
                                          << describe(err) << "); next peer");
        i->second.replica_attempt = 0;
        replicate(self, id);
      });
}

void retry_wal(receiver_ptr self);

void append_to_wal(receiver_ptr self, const std::string& id) {
  auto& st = self->state;
  auto& blk = st.unacked.at(id);
  blk.wal_pending = true;
  ++st.pending_puts;
  self->request(st.wal, caf::infinite, wal_append_atom::value, blk.bytes,
                system_clock{}.now())
    .then(
      [self, id](const std::string& segment, uint64_t offset, uint32_t length) {
        auto& st = self->state;
        --st.pending_puts;
        if (st.wal_failing) {
          SLUICE_INFO("receiver", "stream " << st.stream << ": the WAL accepts "
                                               "blocks again");
          st.wal_failing = false;
        }
        auto i = st.unacked.find(id);
        if (i != st.unacked.end()) {
          i->second.ref.wal = wal_ref{st.wal_dir, segment, offset, length};
          i->second.logged = true;
          i->second.wal_pending = false;
        }
        maybe_report(self, id);
        // Blocks held back while the WAL failed follow one after the other.
        retry_wal(self);
        maybe_finish_stop(self);
      },
      [self, id](caf::error& err) {
        auto& st = self->state;
        --st.pending_puts;
        if (auto i = st.unacked.find(id); i != st.unacked.end())
          i->second.wal_pending = false;
        // Not reported, not dropped: retried at the next block tick, so a
        // full disk delays blocks instead of losing them or reporting
        // blocks the WAL does not hold.
        if (!st.wal_failing) {
          st.wal_failing = true;
          auto text = "cannot write block " + id + " to the WAL: " + describe(err)
                      + " (blocks are held and retried; none is reported "
                        "until written)";
          SLUICE_ERROR("receiver", "stream " << st.stream << ": " << text);
          if (st.tracker)
            self->send(st.tracker, event(st.stream, st.node,
                                         wire::ReceiverEvent::Kind::ERROR, text));
        }
        maybe_finish_stop(self);
      });
}

/// Appends the oldest block the WAL does not hold yet, unless an append is
/// under way: while the WAL fails, one block probes it per block tick.
void retry_wal(receiver_ptr self) {
  auto& st = self->state;
  if (!st.wal)
    return;
  for (auto& [id, b] : st.unacked)
    if (b.wal_pending)
      return;
  for (auto& [id, b] : st.unacked)
    if (!b.logged) {
      append_to_wal(self, id);
      return;
    }
}

/// Cuts what the source buffered into a block, then stores it in the
/// BlockManager and the WAL at once.
void cut_and_store(receiver_ptr self) {
  auto& st = self->state;
  auto cut = st.generator->cut();
  if (!cut)
    return;
  auto id = "in/" + std::to_string(st.stream) + "/" + st.node + "/"
            + std::to_string(st.incarnation) + "/" + std::to_string(st.next_seq++);
  receiver_block blk;
  blk.ref.id = id;
  blk.ref.records = cut->records;
  blk.ref.bytes = cut->bytes.size();
  blk.bytes = cut->bytes;
  blk.logged = !st.wal;
  st.unacked.emplace(id, std::move(blk));
  if (st.wal && !st.wal_failing)
    append_to_wal(self, id);
  ++st.pending_puts;
  self->request(st.block_manager, std::chrono::seconds{30},
                put_block(id, cut->records, copy_level(st), std::move(cut->bytes)))
    .then(
      [self, id](const msg<wire::PutBlockAck>& ack) {
        auto& st = self->state;
        --st.pending_puts;
        std::string where = st.node;
        if (auto err = read_msg(ack, [&](wire::PutBlockAck::Reader r) {
              where = r.getNode();
            }))
          SLUICE_ERROR("receiver", "bad PutBlockAck: " << describe(err));
        if (auto i = st.unacked.find(id); i != st.unacked.end()) {
          i->second.local_node = where;
          i->second.stored = true;
        }
        maybe_report(self, id);
        maybe_finish_stop(self);
      },
      [self, id](caf::error& err) {
        // The replica and the WAL may still hold it: maybe_report decides
        // once they are done.
        auto& st = self->state;
        --st.pending_puts;
        SLUICE_ERROR("receiver", "stream " << st.stream << ": cannot store block "
                                           << id << " locally: " << describe(err));
        if (auto i = st.unacked.find(id); i != st.unacked.end())
          i->second.stored = true;
        maybe_report(self, id);
        maybe_finish_stop(self);
      });
  replicate(self, id);
}

/// Takes the tracker's list of peers. Blocks waiting for it (or whose
/// replica put went to a peer that left) are replicated now.
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
  st.replication = std::max<uint8_t>(1, replication);
  st.peers.clear();
  for (size_t i = 0; i < nodes.size() && i < m.caps.size(); ++i)
    if (m.caps[i] && nodes[i] != st.node)
      st.peers.push_back(receiver_peer{nodes[i], m.caps[i]});
  std::vector<std::string> ids;
  for (auto& [id, b] : st.unacked) {
    if (b.replicated)
      continue;
    if (b.replica_attempt != 0) {
      bool still = std::any_of(st.peers.begin(), st.peers.end(),
                               [&](auto& p) { return p.node == b.replica_target; });
      if (still)
        continue;
      b.replica_attempt = 0; // its reply, if any, is ignored
    }
    b.replica_tries = 0;
    ids.push_back(id);
  }
  for (auto& id : ids)
    replicate(self, id);
}

/// A restarted driver adopted this receiver, or its node hands it over:
/// what the old tracker never acknowledged goes to the new one (which
/// ignores what it already has).
void set_tracker(receiver_ptr self, caf::actor tracker) {
  auto& st = self->state;
  st.tracker = std::move(tracker);
  for (auto& [id, b] : st.unacked)
    if (b.reported)
      report(self, id);
}

/// Ends the receiver once it is stopping and every block it cut is
/// reported: asked to stop (the promise is answered) or its source ended.
void begin_stop(receiver_ptr self) {
  auto& st = self->state;
  st.stopping = true;
  // Join first: after this no record can arrive, so the last cut takes
  // everything the source ever pushed.
  st.join_source();
  // Stopped before the tracker named the peers: the last blocks keep one
  // copy rather than never being reported.
  if (st.replication == 0) {
    st.replication = 1;
    std::vector<std::string> waiting;
    for (auto& [id, b] : st.unacked)
      waiting.push_back(id);
    for (auto& id : waiting) // replicate reports, which may erase
      replicate(self, id);
  }
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
      retry_wal(self);
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
    [self](hand_over_atom, caf::actor tracker)
      -> caf::result<msg<wire::ReceiverStopped>> {
      // Its node leaves (a new incarnation) or the stream runs elsewhere:
      // the peers it knows may be gone with the node's connections (a put to
      // a dead remote proxy waits for its whole timeout), so what is left
      // keeps the copies it has; the WAL, if on, holds it too.
      auto& st = self->state;
      if (st.stopping)
        return make_error(errc::refused, "receiver is already stopping");
      st.replication = 1;
      st.peers.clear();
      for (auto& [id, b] : st.unacked)
        if (!b.replicated && b.replica_attempt != 0) {
          b.replica_attempt = 0; // its reply, if any, is ignored
          b.replicated = true;
        }
      set_tracker(self, std::move(tracker));
      st.stopped = self->make_response_promise();
      std::vector<std::string> ids;
      for (auto& [id, b] : st.unacked)
        ids.push_back(id);
      for (auto& id : ids) { // both may erase
        replicate(self, id);
        maybe_report(self, id);
      }
      begin_stop(self);
      return caf::delegated<msg<wire::ReceiverStopped>>{};
    },
    [self](resend_atom, const std::string& id) { report(self, id); },
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
