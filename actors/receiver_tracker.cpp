#include "actors/receiver_tracker.hpp"

#include <caf/exit_reason.hpp>

#include "actors/atoms.hpp"
#include "messages/schemas.hpp"
#include "runtime/cluster/replica_planner.hpp"
#include "runtime/log.hpp"

namespace sluice {

const char* receiver_tracker_state::name = "receiver_tracker";

namespace {

using tracker_ptr = caf::stateful_actor<receiver_tracker_state>*;

using place_atom = caf::atom_constant<caf::atom("place")>;
using open_place_atom = caf::atom_constant<caf::atom("openplace")>;

/// Workers reconnect every 500 ms: after this long every worker that kept a
/// receiver through the driver's restart has re-registered and been adopted.
constexpr auto adoption_grace = std::chrono::milliseconds{1500};

/// A block copy that takes longer is given up (retried at the next change).
constexpr auto replicate_timeout = std::chrono::seconds{30};

/// Restart back-off runs on the real monotonic clock, whatever clock the
/// batches run on (tests drive batches with a manual clock).
time_ms steady_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

std::map<std::string, uint32_t> receiver_load(tracker_ptr self) {
  std::map<std::string, uint32_t> load;
  for (auto& [node, w] : self->state.workers)
    load.emplace(node, w.receivers);
  return load;
}

void unplace(tracker_ptr self, uint32_t stream) {
  auto& st = self->state;
  auto& s = st.streams[stream];
  auto w = st.workers.find(s.node);
  if (w != st.workers.end() && w->second.receivers > 0)
    --w->second.receivers;
  if (s.receiver)
    self->demonitor(s.receiver);
  s.node.clear();
  s.receiver = caf::actor{};
}

/// Tells the receiver of `stream` the replication and the BlockManagers of
/// every other live worker (where its blocks' second copies may go).
void send_peers(tracker_ptr self, uint32_t stream) {
  auto& st = self->state;
  auto& s = st.streams[stream];
  if (!s.receiver)
    return;
  capnp::MallocMessageBuilder b;
  auto peers = b.initRoot<wire::ReceiverPeers>();
  peers.setReplication(st.replication);
  std::vector<std::string> nodes;
  std::vector<caf::actor> caps;
  for (auto& [node, w] : st.workers)
    if (node != s.node && w.block_manager) {
      nodes.push_back(node);
      caps.push_back(w.block_manager);
    }
  auto list = peers.initNodes(static_cast<unsigned>(nodes.size()));
  for (unsigned i = 0; i < nodes.size(); ++i)
    list.set(i, nodes[i]);
  self->send(s.receiver, make_msg<wire::ReceiverPeers>(b, {}, std::move(caps)));
}

void send_all_peers(tracker_ptr self) {
  for (auto& [stream, s] : self->state.streams)
    send_peers(self, stream);
}

void receiver_failed(tracker_ptr self, uint32_t stream, const std::string& node,
                     const std::string& why);

void start_on(tracker_ptr self, uint32_t stream, const std::string& node) {
  auto& st = self->state;
  auto& s = st.streams[stream];
  auto& w = st.workers[node];
  s.node = node;
  ++w.receivers;
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::StartReceiver>().setStream(stream);
  self->request(w.node_actor, std::chrono::seconds{10},
                make_msg<wire::StartReceiver>(b, {},
                                              {caf::actor_cast<caf::actor>(self)}))
    .then(
      [self, stream, node](const msg<wire::ReceiverEvent>& ev) {
        auto& s = self->state.streams[stream];
        if (s.node != node)
          return; // placed elsewhere meanwhile
        if (ev.caps.empty() || !ev.caps[0]) {
          receiver_failed(self, stream, node, "the worker named no receiver");
          return;
        }
        s.receiver = ev.caps[0];
        self->monitor(s.receiver);
        self->state.supervision.started(stream, steady_now());
        SLUICE_INFO("tracker", "receiver of stream " << stream << " runs on "
                                                     << node);
        receiver_info info;
        info.stream = stream;
        info.node = node;
        info.what = receiver_info::kind::placed;
        self->state.listeners->receiver_event(info);
        send_peers(self, stream);
      },
      [self, stream, node](caf::error& err) {
        receiver_failed(self, stream, node,
                        "cannot start there: " + describe(err));
      });
}

void place_one(tracker_ptr self, uint32_t stream) {
  auto& st = self->state;
  auto& s = st.streams[stream];
  if (st.stopping || !st.placement_open || !s.node.empty() || s.failed
      || s.finished || s.restart_pending)
    return;
  if (auto node = st.supervision.pick(stream, receiver_load(self)))
    start_on(self, stream, *node);
  // No worker: placed when one joins.
}

void place_receivers(tracker_ptr self) {
  for (auto& [stream, s] : self->state.streams)
    place_one(self, stream);
}

/// The receiver of `stream` on `node` is gone without a stop being asked
/// for: restart it after its back-off, or give the stream up.
void receiver_failed(tracker_ptr self, uint32_t stream, const std::string& node,
                     const std::string& why) {
  auto& st = self->state;
  auto& s = st.streams[stream];
  if (s.node != node)
    return; // already handled (its worker's loss and its own end both report)
  unplace(self, stream);
  if (st.stopping)
    return;
  auto d = st.supervision.failed(stream, node, steady_now());
  if (d.give_up) {
    s.failed = true;
    auto text = "stream " + std::to_string(stream) + " failed: its receiver failed "
                + std::to_string(d.failures) + " times in a row (last on " + node
                + ": " + why + "), more than sluice.receiver.max-restarts allows; "
                  "it is not restarted, the other streams go on";
    SLUICE_ERROR("tracker", text);
    receiver_info info;
    info.stream = stream;
    info.node = node;
    info.what = receiver_info::kind::failed;
    info.message = text;
    st.listeners->receiver_event(info);
    return;
  }
  SLUICE_WARN("tracker", "receiver of stream " << stream << " lost on " << node
                                               << " (" << why << "); restart "
                                               << d.failures << " in "
                                               << d.delay.count() << " ms");
  receiver_info info;
  info.stream = stream;
  info.node = node;
  info.what = receiver_info::kind::lost;
  info.message = why + "; restart " + std::to_string(d.failures) + " in "
                 + std::to_string(d.delay.count()) + " ms";
  st.listeners->receiver_event(info);
  s.restart_pending = true;
  self->delayed_send(self, d.delay, place_atom::value, stream);
}

/// Sends `ids` to be dropped by the BlockManager of `node`; one that is
/// restarting gets them once its node announced the next one.
void send_drop(tracker_ptr self, const std::string& node,
               const std::vector<std::string>& ids) {
  auto& st = self->state;
  capnp::MallocMessageBuilder b;
  auto list = b.initRoot<wire::DropBlocks>().initIds(static_cast<unsigned>(ids.size()));
  for (unsigned i = 0; i < ids.size(); ++i)
    list.set(i, ids[i]);
  auto drop = make_msg<wire::DropBlocks>(b);
  if (st.drops.hold(node, drop))
    return;
  if (auto w = st.workers.find(node); w != st.workers.end())
    self->send(w->second.block_manager, std::move(drop));
  // Else the node is gone, and its blocks with it.
}

/// Adds copies of tracked block `id`; tells the scheduler when one is new
/// and the block is allocated to a batch already (its tasks may read it).
/// False if the block is no longer tracked.
bool add_locations(tracker_ptr self, const std::string& id,
                   const std::vector<std::string>& locations) {
  auto& st = self->state;
  auto located = st.blocks.add_locations(id, locations);
  if (!located)
    return false;
  if (!located->added || !located->batch || !st.scheduler)
    return true;
  auto& all = located->ref->locations;
  capnp::MallocMessageBuilder m;
  auto loc = m.initRoot<wire::BlockLocations>();
  loc.setBatchTime(*located->batch);
  loc.setId(id);
  auto list = loc.initLocations(static_cast<unsigned>(all.size()));
  for (unsigned i = 0; i < all.size(); ++i)
    list.set(i, all[i]);
  self->send(st.scheduler, make_msg<wire::BlockLocations>(m));
  return true;
}

/// Copies every tracked block that has fewer live copies than wanted to a
/// live worker that lacks it (runtime/cluster/replica_planner).
void rereplicate(tracker_ptr self, const std::string& why) {
  auto& st = self->state;
  if (st.replication < 2)
    return;
  std::set<std::string> live;
  for (auto& [node, w] : st.workers)
    live.insert(node);
  auto plan = plan_replicas(st.blocks.blocks(), live, st.replication, st.replicating);
  st.degraded = plan.degraded > 0;
  if (!plan.copies.empty())
    SLUICE_INFO("tracker", why << ": copying " << plan.copies.size()
                               << " block(s) to restore their second copy");
  if (plan.degraded > 0)
    SLUICE_WARN("tracker", why << ": replication degraded, " << plan.degraded
                               << " block(s) keep one copy (no other live worker "
                                  "can take them); copied when a worker joins");
  for (auto& copy : plan.copies) {
    auto source = st.workers.find(copy.source);
    auto target = st.workers.find(copy.target);
    capnp::MallocMessageBuilder b;
    auto rep = b.initRoot<wire::ReplicateBlock>();
    rep.setId(copy.id);
    rep.setTarget(copy.target);
    rep.initLevel().setUseDisk(st.settings.receiver_level.use_disk);
    st.replicating.insert(copy.id);
    auto id = copy.id;
    auto to = copy.target;
    self->request(source->second.block_manager, replicate_timeout,
                  make_msg<wire::ReplicateBlock>(b, {}, {target->second.block_manager}))
      .then(
        [self, id, to](const msg<wire::PutBlockAck>&) {
          auto& st = self->state;
          st.replicating.erase(id);
          if (!add_locations(self, id, {to}))
            send_drop(self, to, {id}); // released meanwhile: an orphan copy
        },
        [self, id, to](caf::error& err) {
          self->state.replicating.erase(id);
          SLUICE_WARN("tracker", "cannot copy block " << id << " to " << to
                                                      << ": " << describe(err));
        });
  }
}

/// Releases batch `t`: its cleanup is logged, then its blocks dropped. A
/// cleanup the log refuses leaves the batch allocated (as a restarted
/// driver would find it) and is tried again at the next release.
void release(tracker_ptr self, time_ms t) {
  auto& st = self->state;
  st.release_pending.insert(t);
  for (auto i = st.release_pending.begin(); i != st.release_pending.end();) {
    auto dropped = st.blocks.release(st.clk->now(), *i);
    if (!dropped) {
      SLUICE_ERROR("tracker", "cannot log the cleanup of batch "
                                << *i << " ms (" << describe(dropped.error())
                                << "): its blocks stay until a release succeeds");
      return;
    }
    for (auto& [node, ids] : *dropped)
      send_drop(self, node, ids);
    i = st.release_pending.erase(i);
  }
}

msg<wire::BlockAllocation>
allocation_msg(time_ms t, const std::map<uint32_t, std::vector<block_ref>>& taken) {
  capnp::MallocMessageBuilder b;
  auto out = b.initRoot<wire::BlockAllocation>();
  out.setBatchTime(t);
  auto streams = out.initStreams(static_cast<unsigned>(taken.size()));
  unsigned i = 0;
  for (auto& [stream, blocks] : taken) {
    streams[i].setStream(stream);
    auto list = streams[i].initBlocks(static_cast<unsigned>(blocks.size()));
    for (unsigned j = 0; j < blocks.size(); ++j)
      encode(blocks[j], list[j]);
    ++i;
  }
  return make_msg<wire::BlockAllocation>(b);
}

/// The worker `node` joined (`refreshed`: re-announced itself with a new
/// BlockManager or TaskExecutor) with BlockManager `bm`.
void worker_joined(tracker_ptr self, const std::string& node, bool refreshed,
                   const caf::actor& bm) {
  auto& st = self->state;
  auto& w = st.workers[node];
  if (w.block_manager != bm) {
    // Watched so that drops wait for the next one when it ends.
    self->monitor(bm);
    w.block_manager = bm;
  }
  if (!refreshed) {
    st.drops.forget(node); // its store is not the one they were meant for
    return;
  }
  for (auto& drop : st.drops.refreshed(node))
    self->send(bm, std::move(drop));
}

} // namespace

caf::behavior receiver_tracker(tracker_ptr self, graph* g, run_settings settings,
                               std::shared_ptr<listener_bus> listeners,
                               std::shared_ptr<clock> clk,
                               caf::actor scheduler,
                               std::shared_ptr<driver_log> log,
                               std::shared_ptr<const recovery_plan> plan) {
  auto& st = self->state;
  st.g = g;
  st.settings = std::move(settings);
  st.scheduler = std::move(scheduler);
  restart_policy policy;
  policy.delay = st.settings.receiver_restart_delay;
  policy.max_restarts = st.settings.receiver_max_restarts;
  st.supervision = receiver_supervision{policy};
  st.replication = static_cast<uint8_t>(st.settings.receiver_level.replication);
  st.listeners = std::move(listeners);
  st.clk = std::move(clk);
  // A restarted driver goes on from the replayed log's blocks.
  st.blocks = plan ? received_block_tracker{std::move(log), plan->log.tracker}
                   : received_block_tracker{std::move(log)};
  for (auto& n : g->nodes())
    if (n->kind() == node_kind::receiver_input) {
      st.streams[n->index()];
      st.blocks.add_stream(n->index());
    }
  if (plan) {
    if (!st.streams.empty()) {
      st.placement_open = false;
      self->delayed_send(self, adoption_grace, open_place_atom::value);
    }
  }
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto& [stream, s] : st.streams) {
      if (!s.receiver || s.receiver.address() != dm.source)
        continue;
      if (st.stopping)
        return;
      if (!dm.reason) {
        // A source that returned by itself: there is nothing to restart.
        SLUICE_INFO("tracker", "receiver of stream " << stream << " on " << s.node
                                                     << " ended: its source ended");
        s.finished = true;
        unplace(self, stream);
        return;
      }
      auto node = s.node;
      receiver_failed(self, stream, node, describe(dm.reason));
      return;
    }
    for (auto& [node, w] : st.workers)
      if (w.block_manager && w.block_manager.address() == dm.source) {
        // Its node restarts it over the same store and announces the next.
        st.drops.restarting(node);
        return;
      }
  });
  return {
    [self](open_place_atom) {
      self->state.placement_open = true;
      place_receivers(self);
    },
    [self](const msg<wire::WorkerChange>& m) {
      auto& st = self->state;
      std::string node;
      bool joined = false;
      bool refreshed = false;
      std::vector<uint32_t> running;
      if (auto err = read_msg(m, [&](wire::WorkerChange::Reader r) {
            node = r.getNode();
            joined = r.getJoined();
            refreshed = r.getRefreshed();
            for (auto s : r.getReceivers())
              running.push_back(s);
          })) {
        SLUICE_WARN("tracker", describe(err));
        return;
      }
      if (joined) {
        if (m.caps.size() < 3)
          return;
        // Assigned field by field: a refresh (restarted BlockManager) keeps
        // the node's receiver count; a join starts from 0 (a loss erased it).
        worker_joined(self, node, refreshed, m.caps[0]);
        auto& w = st.workers[node];
        w.node_actor = m.caps[2];
        // Receivers that outlived a driver are adopted where they run: a
        // second receiver elsewhere would read the same source twice.
        for (auto stream : running) {
          auto s = st.streams.find(stream);
          if (s == st.streams.end())
            continue;
          if (!s->second.node.empty() && s->second.node != node) {
            // The second came back after its stream was placed again (it
            // re-registered late): it stops, reporting what it received.
            SLUICE_WARN("tracker", "stream " << stream << " runs on "
                                             << s->second.node << " and on "
                                             << node
                                             << ": keeping the first, the "
                                                "second hands its blocks over");
            capnp::MallocMessageBuilder b;
            auto stop = b.initRoot<wire::StopReceiver>();
            stop.setStream(stream);
            stop.setReason("stream " + std::to_string(stream) + " runs on "
                           + s->second.node);
            self->send(w.node_actor,
                       make_msg<wire::StopReceiver>(
                         b, {}, {caf::actor_cast<caf::actor>(self)}));
            continue;
          }
          if (s->second.node.empty()) {
            SLUICE_INFO("tracker", "adopting the receiver of stream "
                                     << stream << " on " << node);
            start_on(self, stream, node);
          }
        }
        place_receivers(self);
        send_all_peers(self);
        if (st.degraded)
          rereplicate(self, "worker " + node + " joined");
        return;
      }
      st.workers.erase(node);
      st.drops.forget(node);
      std::vector<uint32_t> lost;
      for (auto& [stream, s] : st.streams)
        if (s.node == node)
          lost.push_back(stream);
      for (auto stream : lost)
        receiver_failed(self, stream, node, "worker lost");
      if (auto gone = st.blocks.forget_node(node); !gone.empty())
        SLUICE_WARN("tracker", gone.size() << " block(s) had their last copy on "
                                           << node
                                           << " (tasks read them from the receiver "
                                              "WAL, if on)");
      send_all_peers(self);
      rereplicate(self, "worker " + node + " lost");
    },
    [self](place_atom, uint32_t stream) {
      self->state.streams[stream].restart_pending = false;
      place_one(self, stream);
    },
    [self](const msg<wire::AddBlock>& m) -> caf::result<msg<wire::AddBlockAck>> {
      auto& st = self->state;
      uint32_t stream = 0;
      block_ref ref;
      if (auto err = read_msg(m, [&](wire::AddBlock::Reader r) {
            stream = r.getStream();
            ref = decode(r.getBlock());
          })) {
        SLUICE_WARN("tracker", describe(err));
        return err;
      }
      if (st.streams.count(stream) == 0) {
        auto err = make_error(errc::not_found, "AddBlock for unknown stream "
                                                 + std::to_string(stream));
        SLUICE_WARN("tracker", describe(err));
        return err;
      }
      capnp::MallocMessageBuilder b;
      b.initRoot<wire::AddBlockAck>().setId(ref.id);
      // Logged before it counts (and before the ack): a block the log does
      // not hold would be forgotten by a restarted driver although its
      // receiver saw an ack.
      auto id = ref.id;
      auto locations = ref.locations;
      auto added = st.blocks.add(st.clk->now(), stream, std::move(ref));
      if (!added) {
        SLUICE_ERROR("tracker", "cannot log block " << id << ": "
                                                    << describe(added.error()));
        return added.error();
      }
      if (!*added) {
        // Re-sent after a driver restart, or by a receiver handing over that
        // put the block again (its first copy was on a node since lost).
        // Counted once; a copy it names that the tracker lacks is taken
        // (its node may not have registered yet: readers skip a node they
        // do not know, as they skip a lost one).
        add_locations(self, id, locations);
      }
      return make_msg<wire::AddBlockAck>(b);
    },
    [self](const msg<wire::ReceiverEvent>& m) {
      receiver_info info;
      auto err = read_msg(m, [&](wire::ReceiverEvent::Reader r) {
        info.stream = r.getStream();
        info.node = r.getNode();
        info.message = r.getMessage();
        switch (r.getKind()) {
          case wire::ReceiverEvent::Kind::STARTED:
            info.what = receiver_info::kind::started;
            break;
          case wire::ReceiverEvent::Kind::ERROR:
            info.what = receiver_info::kind::error;
            break;
          default:
            info.what = receiver_info::kind::stopped;
        }
      });
      if (err) {
        SLUICE_WARN("tracker", describe(err));
        return;
      }
      if (info.what == receiver_info::kind::error)
        SLUICE_WARN("tracker", "stream " << info.stream << " on " << info.node
                                         << ": " << info.message);
      self->state.listeners->receiver_event(info);
    },
    [self](const msg<wire::AllocateBlocks>& m)
      -> caf::result<msg<wire::BlockAllocation>> {
      auto& st = self->state;
      time_ms t = 0;
      batch_inputs others;
      if (auto err = read_msg(m, [&](wire::AllocateBlocks::Reader r) {
            t = r.getBatchTime();
            others = decode_inputs(r.getOthers());
          }))
        return err;
      // One record holds the batch's complete inputs: a restarted driver
      // re-runs it with exactly these.
      auto taken = st.blocks.allocate(st.clk->now(), t, std::move(others));
      if (!taken) {
        SLUICE_ERROR("tracker", "cannot allocate batch " << t << " ms: "
                                                        << describe(taken.error()));
        return taken.error();
      }
      return allocation_msg(t, *taken);
    },
    [self](const msg<wire::ReleaseBatch>& m) {
      time_ms t = 0;
      if (auto err = read_msg(m, [&](wire::ReleaseBatch::Reader r) {
            t = r.getBatchTime();
          })) {
        SLUICE_WARN("tracker", describe(err));
        return;
      }
      release(self, t);
    },
    [self](stop_receivers_atom) -> caf::result<bool> {
      auto& st = self->state;
      st.stopping = true;
      std::vector<caf::actor> running;
      for (auto& [stream, s] : st.streams)
        if (s.receiver)
          running.push_back(s.receiver);
      if (running.empty())
        return true;
      auto rp = self->make_response_promise<bool>();
      auto left = std::make_shared<size_t>(running.size());
      for (auto& r : running) {
        capnp::MallocMessageBuilder b;
        b.initRoot<wire::StopReceiver>().setReason("graceful stop");
        self->request(r, std::chrono::seconds{30}, make_msg<wire::StopReceiver>(b))
          .then(
            [rp, left](const msg<wire::ReceiverStopped>&) mutable {
              if (--*left == 0)
                rp.deliver(true);
            },
            [rp, left](caf::error& err) mutable {
              SLUICE_WARN("tracker", "a receiver did not stop cleanly: "
                                       << describe(err));
              if (--*left == 0)
                rp.deliver(true);
            });
      }
      return rp;
    },
  };
}

} // namespace sluice
