#include "actors/membership.hpp"

#include <caf/exit_reason.hpp>

#include "actors/atoms.hpp"
#include "messages/schemas.hpp"
#include "runtime/log.hpp"

namespace sluice {

const char* membership_state::name = "membership";

namespace {

using membership_ptr = caf::stateful_actor<membership_state>*;

void announce(membership_ptr self, const worker_entry& w, bool joined) {
  capnp::MallocMessageBuilder b;
  auto change = b.initRoot<wire::WorkerChange>();
  change.setNode(w.node);
  change.setJoined(joined);
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

msg<wire::RegisterWorkerAck> ack(bool accepted, const std::string& reason) {
  capnp::MallocMessageBuilder b;
  auto a = b.initRoot<wire::RegisterWorkerAck>();
  a.setAccepted(accepted);
  a.setReason(reason);
  a.setDriverNode("driver");
  return make_msg<wire::RegisterWorkerAck>(b);
}

} // namespace

caf::behavior membership(membership_ptr self, uint64_t fingerprint,
                         uint32_t graph_size, caf::actor tracker,
                         caf::actor scheduler) {
  auto& st = self->state;
  st.fingerprint = fingerprint;
  st.graph_size = graph_size;
  st.tracker = std::move(tracker);
  st.scheduler = std::move(scheduler);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& workers = self->state.workers;
    for (auto i = workers.begin(); i != workers.end(); ++i) {
      if (i->second.node_actor.address() == dm.source) {
        SLUICE_WARN("membership", "worker " << i->first << " lost ("
                                            << describe(dm.reason) << ")");
        auto lost = std::move(i->second);
        workers.erase(i);
        announce(self, lost, false);
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
        return ack(false, reason);
      }
      if (w.slots == 0)
        w.slots = 1;
      w.block_manager = m.caps[0];
      w.task_executor = m.caps[1];
      w.node_actor = m.caps[2];
      auto old = st.workers.find(w.node);
      if (old != st.workers.end()) {
        self->demonitor(old->second.node_actor);
        announce(self, old->second, false);
        st.workers.erase(old);
      }
      self->monitor(w.node_actor);
      SLUICE_INFO("membership", "worker " << w.node << " joined with "
                                          << w.slots << " slots");
      announce(self, w, true);
      st.workers.emplace(w.node, std::move(w));
      return ack(true, "");
    },
    [self](shutdown_workers_atom, const std::string& reason) {
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
