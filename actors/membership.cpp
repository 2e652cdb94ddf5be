#include "actors/membership.hpp"

#include <caf/exit_reason.hpp>

#include "actors/atoms.hpp"
#include "messages/schemas.hpp"
#include "runtime/log.hpp"

namespace sluice {

const char* membership_state::name = "membership";

namespace {

using membership_ptr = caf::stateful_actor<membership_state>*;

void announce(membership_ptr self, const worker_entry& w, bool joined,
              bool refreshed = false) {
  capnp::MallocMessageBuilder b;
  auto change = b.initRoot<wire::WorkerChange>();
  change.setNode(w.node);
  change.setJoined(joined);
  change.setRefreshed(refreshed);
  change.setSlots(w.slots);
  auto rs = change.initReceivers(static_cast<unsigned>(w.receivers.size()));
  for (unsigned i = 0; i < w.receivers.size(); ++i)
    rs.set(i, w.receivers[i]);
  std::vector<caf::actor> caps;
  if (joined)
    caps = {w.block_manager, w.task_executor, w.node_actor};
  auto m = make_msg<wire::WorkerChange>(b, {}, std::move(caps));
  self->send(self->state.tracker, m);
  self->send(self->state.scheduler, m);
}

msg<wire::RegisterWorkerAck> ack(const std::string& node, bool accepted,
                                 const std::string& reason,
                                 bool new_incarnation = false,
                                 std::vector<caf::actor> caps = {}) {
  capnp::MallocMessageBuilder b;
  auto a = b.initRoot<wire::RegisterWorkerAck>();
  a.setNode(node);
  a.setAccepted(accepted);
  a.setReason(reason);
  a.setDriverNode("driver");
  a.setNewIncarnation(new_incarnation);
  return make_msg<wire::RegisterWorkerAck>(b, {}, std::move(caps));
}

void tell(membership_ptr self, const worker_entry& w, node_info::kind what,
          const std::string& reason = "") {
  node_info info;
  info.node = w.node;
  info.what = what;
  info.slots = w.slots;
  info.reason = reason;
  self->state.listeners->node_event(info);
}

/// Forgets a registered worker and tells the tracker and the scheduler.
/// `connection_lost`: its connection died, so its id is never trusted again.
void declare_lost(membership_ptr self, std::map<std::string, worker_entry>::iterator i,
                  const caf::error& reason, bool connection_lost) {
  auto& st = self->state;
  if (st.stopping) {
    // Told to leave: nothing of theirs is re-homed, and a scheduler that
    // saw state "lost" here would fail a clean stop.
    SLUICE_INFO("membership", "worker " << i->first << " left (the driver stops)");
    tell(self, i->second, node_info::kind::left, "the driver stops");
    self->demonitor(i->second.node_actor);
    st.workers.erase(i);
    return;
  }
  bool orderly = !reason || reason == caf::exit_reason::normal
                 || reason == caf::exit_reason::user_shutdown;
  if (orderly)
    SLUICE_INFO("membership", "worker " << i->first << " left ("
                                        << describe(reason) << ")");
  else
    SLUICE_WARN("membership", "worker " << i->first << " declared lost ("
                                        << describe(reason) << ")"
                                        << (connection_lost
                                              ? "; its id will not be taken back"
                                              : ""));
  tell(self, i->second, orderly ? node_info::kind::left : node_info::kind::lost,
       describe(reason));
  if (connection_lost)
    st.lost.insert(i->first);
  self->demonitor(i->second.node_actor);
  auto lost = std::move(i->second);
  st.workers.erase(i);
  announce(self, lost, false);
}

/// The tracker travels with the refusal: the node's receivers hand their
/// unacknowledged blocks to it before they stop (their old tracker handle
/// died with the connection), so a node cut off for a while loses none of
/// what it received meanwhile.
msg<wire::RegisterWorkerAck> refuse_incarnation(membership_ptr self,
                                                const std::string& node) {
  auto reason = "node " + node + " was declared lost; it must rejoin as a new "
                                 "incarnation";
  SLUICE_INFO("membership", reason);
  return ack(node, false, reason, true, {self->state.tracker});
}

} // namespace

caf::behavior membership(membership_ptr self, uint64_t fingerprint,
                         uint32_t graph_size, caf::actor tracker,
                         caf::actor scheduler,
                         std::shared_ptr<listener_bus> listeners) {
  auto& st = self->state;
  st.listeners = std::move(listeners);
  st.fingerprint = fingerprint;
  st.graph_size = graph_size;
  st.tracker = std::move(tracker);
  st.scheduler = std::move(scheduler);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& workers = self->state.workers;
    for (auto i = workers.begin(); i != workers.end(); ++i) {
      if (i->second.node_actor.address() == dm.source) {
        // Only a dead connection taints the id: a node actor that ended by
        // itself told us so over a live connection, and its process
        // restarts it under the same id over the same store.
        declare_lost(self, i, dm.reason,
                     dm.reason == caf::exit_reason::remote_link_unreachable);
        return;
      }
    }
  });
  return {
    [self](const msg<wire::RegisterWorker>& m)
      -> caf::result<msg<wire::RegisterWorkerAck>> {
      auto& st = self->state;
      worker_entry w;
      uint64_t fp = 0;
      uint32_t size = 0;
      if (auto err = read_msg(m, [&](wire::RegisterWorker::Reader r) {
            w.node = r.getNode();
            w.slots = r.getSlots();
            fp = r.getGraphFingerprint();
            size = r.getGraphSize();
            for (auto s : r.getReceivers())
              w.receivers.push_back(s);
          })) {
        SLUICE_WARN("membership", describe(err));
        return err;
      }
      if (m.caps.size() < 3 || !m.caps[0] || !m.caps[1] || !m.caps[2]) {
        auto err = make_error(errc::malformed_message,
                              "RegisterWorker from " + w.node
                                + " lacks its BlockManager, TaskExecutor or "
                                  "node capability");
        SLUICE_WARN("membership", describe(err));
        return err;
      }
      if (fp != st.fingerprint || size != st.graph_size) {
        auto reason = "worker " + w.node + " built a different DStream graph ("
                      + std::to_string(size) + " nodes, fingerprint "
                      + std::to_string(fp) + ") than the driver ("
                      + std::to_string(st.graph_size) + " nodes, fingerprint "
                      + std::to_string(st.fingerprint)
                      + "): start every process with the same application "
                        "and options";
        SLUICE_ERROR("membership", reason);
        return ack(w.node, false, reason);
      }
      if (w.slots == 0)
        w.slots = 1;
      w.block_manager = m.caps[0];
      w.task_executor = m.caps[1];
      w.node_actor = m.caps[2];
      if (st.lost.count(w.node) > 0)
        return refuse_incarnation(self, w.node);
      auto old = st.workers.find(w.node);
      if (old != st.workers.end() && old->second.node_actor == w.node_actor) {
        if (caf::actor_cast<caf::abstract_actor*>(old->second.node_actor)
            != caf::actor_cast<caf::abstract_actor*>(w.node_actor)) {
          // The same remote actor through a new proxy: the connection it was
          // registered over died (its down_msg is still on the way). What it
          // did meanwhile is unknown, as for any node declared lost.
          declare_lost(self, old, caf::exit_reason::remote_link_unreachable,
                       true);
          return refuse_incarnation(self, w.node);
        }
        // Same node actor: it restarted a BlockManager or TaskExecutor.
        auto& cur = old->second;
        bool new_bm = cur.block_manager != w.block_manager;
        bool new_te = cur.task_executor != w.task_executor;
        SLUICE_INFO("membership", "worker " << w.node << " refreshed its"
                                            << (new_bm ? " BlockManager" : "")
                                            << (new_bm && new_te ? " and" : "")
                                            << (new_te ? " TaskExecutor" : "")
                                            << (!new_bm && !new_te
                                                  ? " registration"
                                                  : ""));
        cur = std::move(w);
        tell(self, cur, node_info::kind::refreshed);
        announce(self, cur, true, true);
        return ack(cur.node, true, "");
      }
      if (old != st.workers.end()) {
        self->demonitor(old->second.node_actor);
        tell(self, old->second, node_info::kind::left,
             "registered again with new actors");
        announce(self, old->second, false);
        st.workers.erase(old);
      }
      self->monitor(w.node_actor);
      SLUICE_INFO("membership", "worker " << w.node << " joined with "
                                          << w.slots << " slots");
      tell(self, w, node_info::kind::joined);
      announce(self, w, true);
      auto node = w.node;
      st.workers.emplace(node, std::move(w));
      return ack(node, true, "");
    },
    [self](shutdown_workers_atom, const std::string& reason) {
      self->state.stopping = true;
      for (auto& [node, w] : self->state.workers) {
        capnp::MallocMessageBuilder b;
        b.initRoot<wire::Shutdown>().setReason(reason);
        self->send(w.node_actor, make_msg<wire::Shutdown>(b));
      }
      return self->state.workers.size();
    },
  };
}

} // namespace sluice
