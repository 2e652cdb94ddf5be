#include "actors/receiver_tracker.hpp"

#include <algorithm>

#include "actors/atoms.hpp"
#include "messages/schemas.hpp"
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

/// The live worker with the fewest receivers, spreading receivers over nodes.
const std::string* pick_worker(tracker_ptr self) {
  const std::string* best = nullptr;
  uint32_t fewest = UINT32_MAX;
  for (auto& [node, w] : self->state.workers) {
    if (w.receivers < fewest) {
      fewest = w.receivers;
      best = &node;
    }
  }
  return best;
}

void place_receivers(tracker_ptr self);

void unplace(tracker_ptr self, uint32_t stream) {
  auto& st = self->state;
  auto& s = st.streams[stream];
  auto w = st.workers.find(s.node);
  if (w != st.workers.end() && w->second.receivers > 0)
    --w->second.receivers;
  s.node.clear();
  s.receiver = caf::actor{};
}

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
              if (!ev.caps.empty())
          s.receiver = ev.caps[0];
        SLUICE_INFO("tracker", "receiver of stream " << stream << " runs on "
                                                     << node);
      },
      [self, stream, node](caf::error& err) {
        SLUICE_WARN("tracker", "cannot start the receiver of stream "
                                 << stream << " on " << node << ": "
                                 << describe(err));
        if (self->state.streams[stream].node == node)
          unplace(self, stream);
        self->delayed_send(self, self->state.settings.receiver_restart_delay,
                           place_atom::value);
      });
}

void place_receivers(tracker_ptr self) {
  auto& st = self->state;
  if (st.stopping || !st.placement_open)
    return;
  for (auto& [stream, s] : st.streams) {
    if (!s.node.empty())
      continue;
    auto* node = pick_worker(self);
    if (node == nullptr)
      return; // no worker yet: placed when one joins
    start_on(self, stream, *node);
  }
}

void drop_blocks(tracker_ptr self,
                 const std::map<uint32_t, std::vector<block_ref>>& streams) {
  std::map<std::string, std::vector<std::string>> by_node;
  for (auto& [stream, blocks] : streams)
    for (auto& ref : blocks) {
      self->state.known.erase(ref.id);
      for (auto& loc : ref.locations)
        by_node[loc].push_back(ref.id);
    }
  for (auto& [node, ids] : by_node) {
    auto w = self->state.workers.find(node);
    if (w == self->state.workers.end())
      continue;
    capnp::MallocMessageBuilder b;
    auto drop = b.initRoot<wire::DropBlocks>();
    auto list = drop.initIds(static_cast<unsigned>(ids.size()));
    for (unsigned i = 0; i < ids.size(); ++i)
      list.set(i, ids[i]);
    self->send(w->second.block_manager, make_msg<wire::DropBlocks>(b));
  }
}

msg<wire::BlockAllocation> allocate(tracker_ptr self, time_ms t) {
  auto& st = self->state;
  auto& alloc = st.allocations[t];
  for (auto& [stream, blocks] : st.unallocated) {
    auto& dst = alloc[stream];
    std::move(blocks.begin(), blocks.end(), std::back_inserter(dst));
    blocks.clear();
  }
  capnp::MallocMessageBuilder b;
  auto out = b.initRoot<wire::BlockAllocation>();
  out.setBatchTime(t);
  auto streams = out.initStreams(static_cast<unsigned>(alloc.size()));
  unsigned i = 0;
  for (auto& [stream, blocks] : alloc) {
    streams[i].setStream(stream);
    auto list = streams[i].initBlocks(static_cast<unsigned>(blocks.size()));
    for (unsigned j = 0; j < blocks.size(); ++j)
      encode(blocks[j], list[j]);
    ++i;
  }
  return make_msg<wire::BlockAllocation>(b);
}

} // namespace

caf::behavior receiver_tracker(tracker_ptr self, graph* g, run_settings settings,
                               std::shared_ptr<listener_bus> listeners,
                               std::shared_ptr<clock> clk,
                               std::shared_ptr<driver_log> log,
                               std::shared_ptr<const recovery_plan> plan) {
  auto& st = self->state;
  st.g = g;
  st.settings = std::move(settings);
  st.listeners = std::move(listeners);
  st.clk = std::move(clk);
  st.log = std::move(log);
  for (auto& n : g->nodes())
    if (n->kind() == node_kind::receiver_input)
      st.streams[n->index()];
  if (plan) {
    st.unallocated = plan->log.unallocated;
    st.known = plan->log.known_blocks;
    for (auto& [t, inputs] : plan->log.allocations)
      for (auto& [node, parts] : inputs)
        for (auto& p : parts)
          if (!p.is_file)
            st.allocations[t][node].push_back(p.block);
    if (!st.streams.empty()) {
      st.placement_open = false;
      self->delayed_send(self, adoption_grace, open_place_atom::value);
    }
  }
  return {
    [self](open_place_atom) {
      self->state.placement_open = true;
      place_receivers(self);
    },
    [self](const msg<wire::WorkerChange>& m) {
      auto& st = self->state;
      std::string node;
      bool joined = false;
      std::vector<uint32_t> running;
      if (auto err = read_msg(m, [&](wire::WorkerChange::Reader r) {
            node = r.getNode();
            joined = r.getJoined();
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
        auto& w = st.workers[node];
        w.block_manager = m.caps[0];
        w.node_actor = m.caps[2];
        // Receivers that outlived a driver are adopted where they run: a
        // second receiver elsewhere would read the same source twice.
        for (auto stream : running) {
          auto s = st.streams.find(stream);
          if (s == st.streams.end())
            continue;
          if (!s->second.node.empty() && s->second.node != node) {
            SLUICE_WARN("tracker", "stream " << stream << " runs on "
                                             << s->second.node << " and on "
                                             << node << ": keeping the first");
            continue;
          }
          if (s->second.node.empty()) {
            SLUICE_INFO("tracker", "adopting the receiver of stream "
                                     << stream << " on " << node);
            start_on(self, stream, node);
          }
        }
        place_receivers(self);
        return;
      }
      st.workers.erase(node);
      bool lost_any = false;
      for (auto& [stream, s] : st.streams) {
        if (s.node == node) {
          SLUICE_WARN("tracker", "receiver of stream " << stream
                                                       << " lost with worker "
                                                       << node);
          s.node.clear();
          s.receiver = caf::actor{};
                  lost_any = true;
        }
      }
      if (lost_any)
        self->delayed_send(self, st.settings.receiver_restart_delay,
                           place_atom::value);
    },
    [self](place_atom) { place_receivers(self); },
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
      if (st.known.count(ref.id) > 0)
        return make_msg<wire::AddBlockAck>(b); // re-sent after a restart
      // Logged before it counts: a block the log does not hold would be
      // forgotten by a restarted driver although its receiver saw an ack.
      if (st.log)
        if (auto err = st.log->block_added(st.clk->now(), stream, ref)) {
          SLUICE_ERROR("tracker", "cannot log block " << ref.id << ": "
                                                      << describe(err));
          return err;
        }
      st.known.insert(ref.id);
      st.unallocated[stream].push_back(std::move(ref));
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
      time_ms t = 0;
      if (auto err = read_msg(m, [&](wire::AllocateBlocks::Reader r) {
            t = r.getBatchTime();
          }))
        return err;
      return allocate(self, t);
    },
    [self](const msg<wire::ReleaseBatch>& m) {
      auto& st = self->state;
      time_ms t = 0;
      if (auto err = read_msg(m, [&](wire::ReleaseBatch::Reader r) {
            t = r.getBatchTime();
          })) {
        SLUICE_WARN("tracker", describe(err));
        return;
      }
      auto i = st.allocations.find(t);
      if (i == st.allocations.end())
        return;
      drop_blocks(self, i->second);
      st.allocations.erase(i);
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
