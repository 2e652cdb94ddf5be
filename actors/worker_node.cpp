#include "actors/worker_node.hpp"

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/node_id.hpp>

#include "actors/atoms.hpp"
#include "actors/block_manager.hpp"
#include "actors/receiver.hpp"
#include "actors/task_executor.hpp"
#include "messages/schemas.hpp"
#include "runtime/hash.hpp"
#include "runtime/log.hpp"
#include "runtime/nodes/input_nodes.hpp"
#include "runtime/recovery/paths.hpp"

namespace sluice {

const char* worker_node_state::name = "worker_node";

namespace {

using worker_ptr = caf::stateful_actor<worker_node_state>*;

constexpr auto connect_retry = std::chrono::milliseconds{500};

void register_with(worker_ptr self) {
  auto& st = self->state;
  capnp::MallocMessageBuilder b;
  auto reg = b.initRoot<wire::RegisterWorker>();
  reg.setNode(st.node);
  reg.setSlots(st.settings.executor_cores);
  reg.setGraphFingerprint(st.g->fingerprint());
  reg.setGraphSize(static_cast<uint32_t>(st.g->size()));
  auto rs = reg.initReceivers(static_cast<unsigned>(st.receivers.size()));
  unsigned i = 0;
  for (auto& [stream, r] : st.receivers)
    rs.set(i++, stream);
  self->send(st.driver, make_msg<wire::RegisterWorker>(
                          b, {}, {st.block_manager, st.task_executor,
                                  caf::actor_cast<caf::actor>(self)}));
}

void stop_receivers(worker_ptr self) {
  for (auto& [stream, r] : self->state.receivers)
    self->send_exit(r, caf::exit_reason::user_shutdown);
  self->state.receivers.clear();
}

/// Every way out of a worker node: a normal quit does not travel over links,
/// so the node ends its children itself or they would keep the process up.
void shut_down(worker_ptr self, caf::error reason) {
  stop_receivers(self);
  auto& st = self->state;
  for (auto* child : {&st.block_manager, &st.task_executor})
    if (*child)
      self->send_exit(*child, caf::exit_reason::user_shutdown);
  self->quit(std::move(reason));
}

void connect(worker_ptr self) {
  auto& st = self->state;
  auto& ep = *st.driver_endpoint;
  auto mm = self->system().middleman().actor_handle();
  self->request(mm, std::chrono::seconds{10}, caf::connect_atom::value, ep.host,
                ep.port)
    .then(
      [self](const caf::node_id&, caf::strong_actor_ptr& ptr,
             const std::set<std::string>&) {
        auto& st = self->state;
        if (!ptr) {
          SLUICE_WARN("worker", st.node << ": no actor published at the driver's "
                                           "address; retrying");
          self->delayed_send(self, connect_retry, connect_atom::value);
          return;
        }
        st.driver = caf::actor_cast<caf::actor>(std::move(ptr));
        st.connect_failures = 0;
        self->monitor(st.driver);
        register_with(self);
      },
      [self](caf::error& err) {
        auto& st = self->state;
        // Log the first failure and then every 20th: a worker may wait long
        // for its driver, and the log should say so without flooding.
        if (st.connect_failures++ % 20 == 0)
          SLUICE_WARN("worker", st.node << ": driver "
                                        << st.driver_endpoint->host << ":"
                                        << st.driver_endpoint->port
                                        << " unreachable ("
                                        << describe(err) << "); retrying");
        self->delayed_send(self, connect_retry, connect_atom::value);
      });
}

caf::result<msg<wire::ReceiverEvent>> start_receiver(worker_ptr self,
                                                     const msg<wire::StartReceiver>& m) {
  auto& st = self->state;
  uint32_t stream = 0;
  if (auto err = read_msg(m, [&](wire::StartReceiver::Reader r) {
        stream = r.getStream();
      }))
    return err;
  if (m.caps.empty() || !m.caps[0])
    return make_error(errc::malformed_message,
                      "StartReceiver without the tracker capability");
  auto* input = dynamic_cast<receiver_input_base*>(st.g->at(stream));
  if (input == nullptr)
    return make_error(errc::not_found, "node " + std::to_string(stream)
                                         + " is not a receiver input");
  auto reply = [&](const std::string& text, caf::actor r) {
    capnp::MallocMessageBuilder b;
    auto ev = b.initRoot<wire::ReceiverEvent>();
    ev.setStream(stream);
    ev.setNode(st.node);
    ev.setKind(wire::ReceiverEvent::Kind::STARTED);
    ev.setMessage(text);
    return make_msg<wire::ReceiverEvent>(b, {}, {std::move(r)});
  };
  if (auto i = st.receivers.find(stream); i != st.receivers.end()) {
    // A restarted driver adopts the receiver that outlived its predecessor.
    self->send(i->second, set_tracker_atom::value, m.caps[0]);
    return reply("receiver already running on " + st.node, i->second);
  }
  auto incarnation = st.receiver_starts++;
  auto seed = stable_hash(st.node) ^ (incarnation * 0x9e3779b97f4a7c15ull)
              ^ stream;
  receiver_options opts;
  opts.block_interval = st.settings.block_interval;
  opts.max_rate = st.settings.receiver_max_rate;
  opts.incarnation = incarnation;
  opts.use_disk = st.settings.storage_level.find("disk") != std::string::npos;
  opts.wal_rolling = st.settings.wal_rolling_interval;
  if (st.settings.wal_enable)
    opts.wal_dir = receiver_wal_dir(st.settings.checkpoint_dir, stream, st.node,
                                    incarnation);
  auto r = self->spawn(receiver, stream, st.node, m.caps[0], st.block_manager,
                       input->make_source(seed), opts);
  self->monitor(r);
  st.receivers.emplace(stream, r);
  return reply("receiver started on " + st.node, r);
}

} // namespace

caf::behavior worker_node(worker_ptr self, std::string node, graph* g,
                          run_settings settings, caf::actor driver,
                          std::shared_ptr<block_store> store) {
  auto& st = self->state;
  st.node = std::move(node);
  st.g = g;
  st.settings = std::move(settings);
  st.store = store ? std::move(store) : std::make_shared<block_store>();
  st.block_manager = self->spawn<caf::linked>(block_manager, st.node, st.store);
  st.task_executor = self->spawn<caf::linked>(task_executor, st.node, g,
                                              st.store);
  if (driver) {
    st.driver = std::move(driver);
    self->monitor(st.driver);
    register_with(self);
  } else {
    st.driver_endpoint = st.settings.driver;
    connect(self);
  }
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source == st.driver.address()) {
      st.driver = caf::actor{};
      if (!st.driver_endpoint) {
        shut_down(self, dm.reason);
        return;
      }
      // Receivers keep receiving (and, with the WAL on, logging): what they
      // store meanwhile is reported to the restarted driver.
      SLUICE_WARN("worker", st.node << ": lost the driver ("
                                    << describe(dm.reason) << "); keeping "
                                    << st.store->size() << " blocks and "
                                    << st.receivers.size()
                                    << " receivers, looking for it again");
      connect(self);
      return;
    }
    for (auto i = st.receivers.begin(); i != st.receivers.end(); ++i) {
      if (i->second.address() == dm.source) {
        if (dm.reason && dm.reason != caf::exit_reason::user_shutdown)
          SLUICE_WARN("worker", st.node << ": receiver of stream " << i->first
                                        << " ended: " << describe(dm.reason));
        st.receivers.erase(i);
        return;
      }
    }
  });
  // Receivers are monitored, not linked (a receiver that stops must not take
  // the node down), so every way out of this actor stops them explicitly.
  self->set_exit_handler([self](caf::exit_msg& em) { shut_down(self, em.reason); });
  return {
    [self](connect_atom) {
      if (!self->state.driver)
        connect(self);
    },
    [self](const msg<wire::RegisterWorkerAck>& m) {
      auto& st = self->state;
      bool accepted = false;
      std::string reason;
      if (auto err = read_msg(m, [&](wire::RegisterWorkerAck::Reader r) {
            accepted = r.getAccepted();
            reason = r.getReason();
          })) {
        SLUICE_ERROR("worker", st.node << ": " << describe(err));
        return;
      }
      if (!accepted) {
        SLUICE_ERROR("worker", st.node << ": the driver refused this worker: "
                                       << reason);
        shut_down(self, make_error(errc::graph_mismatch, reason));
        return;
      }
      SLUICE_INFO("worker", st.node << ": registered with the driver ("
                                    << st.settings.executor_cores
                                    << " task slots)");
    },
    [self](const msg<wire::StartReceiver>& m)
      -> caf::result<msg<wire::ReceiverEvent>> { return start_receiver(self, m); },
    [self](const msg<wire::Shutdown>& m) {
      std::string reason;
      auto err = read_msg(m, [&](wire::Shutdown::Reader r) { reason = r.getReason(); });
      SLUICE_INFO("worker", self->state.node << ": shutting down ("
                                             << (err ? describe(err) : reason)
                                             << ")");
      shut_down(self, caf::none);
    },
  };
}

} // namespace sluice
