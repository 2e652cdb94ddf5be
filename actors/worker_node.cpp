#include "actors/worker_node.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/node_id.hpp>
#include <caf/send.hpp>

#include "actors/atoms.hpp"
#include "actors/block_manager.hpp"
#include "actors/receiver.hpp"
#include "actors/task_executor.hpp"
#include "runtime/hash.hpp"
#include "runtime/log.hpp"
#include "runtime/nodes/input_nodes.hpp"
#include "runtime/recovery/paths.hpp"

namespace sluice {

const char* worker_node_state::name = "worker_node";

worker_node_state::~worker_node_state() {
  // The one exit every way out of the actor passes, a crash or a kill
  // included: nothing the node started may outlive it (receivers would
  // keep reading their sources for nobody).
  for (auto& [stream, r] : receivers)
    caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
  for (auto* child : {&block_manager, &task_executor})
    if (*child)
      caf::anon_send_exit(*child, caf::exit_reason::user_shutdown);
  for (auto& child : retiring)
    caf::anon_send_exit(child, caf::exit_reason::user_shutdown);
  for (auto& r : handing_over)
    caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
}

namespace {

using worker_ptr = caf::stateful_actor<worker_node_state>*;

using restart_bm_atom = caf::atom_constant<caf::atom("restartbm")>;
using restart_te_atom = caf::atom_constant<caf::atom("restartte")>;

constexpr auto connect_retry = std::chrono::milliseconds{500};

/// A receiver handing over whose blocks the tracker has not acknowledged by
/// then is ended, its remaining blocks dropped (the driver is unreachable
/// again; they are in its WAL, if on, but nobody will read them).
constexpr auto handover_timeout = std::chrono::seconds{30};

/// Registers (again) with the driver, once there is one and both children
/// run: a registration from a registered node is its capability refresh.
void register_with(worker_ptr self) {
  auto& st = self->state;
  if (!st.driver || !st.block_manager || !st.task_executor || st.rejoining)
    return;
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

void spawn_block_manager(worker_ptr self) {
  auto& st = self->state;
  st.block_manager = self->spawn(block_manager, st.node, st.store);
  self->monitor(st.block_manager);
  // Puts held while it restarted go to it now, answered by it.
  for (auto& [rp, m] : st.held_puts)
    rp.delegate(st.block_manager, std::move(m));
  st.held_puts.clear();
}

void spawn_task_executor(worker_ptr self) {
  auto& st = self->state;
  st.task_executor = self->spawn(task_executor, st.node, st.g, st.store);
  self->monitor(st.task_executor);
}

void fail_held_puts(worker_ptr self, const std::string& why) {
  for (auto& [rp, m] : self->state.held_puts)
    rp.deliver(make_error(errc::refused, why));
  self->state.held_puts.clear();
}

void stop_receivers(worker_ptr self) {
  for (auto& [stream, r] : self->state.receivers)
    self->send_exit(r, caf::exit_reason::user_shutdown);
  for (auto& r : self->state.handing_over)
    self->send_exit(r, caf::exit_reason::user_shutdown);
  self->state.receivers.clear();
  self->state.trackers.clear();
  self->state.handing_over.clear();
}

/// Stops the receiver of `stream` without losing what it took from its
/// source: it reports its last blocks and every block not yet acknowledged
/// to `tracker` (the driver's current one: the handle it holds may have
/// died with a connection), and ends once each is acknowledged.
/// `store_dropped`: the node is about to drop its store (a new
/// incarnation), so blocks whose local copy is there are put again. Killing it
/// instead would drop them, and a source without acknowledgements (a
/// socket) never sends them again.
void hand_over(worker_ptr self, uint32_t stream, const caf::actor& tracker,
               const std::string& why, bool store_dropped) {
  auto& st = self->state;
  auto i = st.receivers.find(stream);
  if (i == st.receivers.end())
    return;
  auto r = i->second;
  st.receivers.erase(i);
  st.trackers.erase(stream);
  st.handing_over.push_back(r);
  auto node = st.node;
  SLUICE_INFO("worker", node << ": handing over the receiver of stream "
                             << stream << " (" << why << ")");
  self->request(r, handover_timeout, hand_over_atom::value, tracker, store_dropped)
    .then(
      [node, stream](const msg<wire::ReceiverStopped>&) {
        SLUICE_INFO("worker", node << ": the receiver of stream " << stream
                                   << " handed its blocks over and stopped");
      },
      [self, r, node, stream](caf::error& err) {
        SLUICE_ERROR("worker", node << ": the receiver of stream " << stream
                                    << " could not hand its blocks over ("
                                    << describe(err)
                                    << "); its unacknowledged blocks are dropped");
        self->send_exit(r, caf::exit_reason::user_shutdown);
      });
}

/// The orderly ways out of a worker node (the state's destructor covers the
/// others): a normal quit does not travel over links or monitors, so the
/// node ends its children itself or they would keep the process up.
void shut_down(worker_ptr self, caf::error reason) {
  auto& st = self->state;
  st.stopping = true;
  fail_held_puts(self, "worker node " + st.node + " is shutting down");
  stop_receivers(self);
  for (auto* child : {&st.block_manager, &st.task_executor})
    if (*child) {
      self->send_exit(*child, caf::exit_reason::user_shutdown);
      *child = caf::actor{};
    }
  for (auto& child : st.retiring)
    self->send_exit(child, caf::exit_reason::user_shutdown);
  st.retiring.clear();
  self->quit(std::move(reason));
}

/// A supervised child ended: restart it after the budget's delay, or shut
/// the node down once the budget is spent.
void child_ended(worker_ptr self, bool is_block_manager, const caf::error& reason) {
  auto& st = self->state;
  const char* what = is_block_manager ? "BlockManager" : "TaskExecutor";
  (is_block_manager ? st.block_manager : st.task_executor) = caf::actor{};
  if (st.stopping)
    return;
  auto& budget = is_block_manager ? st.block_manager_budget
                                  : st.task_executor_budget;
  auto delay = budget.on_crash(std::chrono::steady_clock::now());
  if (!delay) {
    auto err = make_error(
      errc::node_failed,
      std::string{what} + " of " + st.node + " ended "
        + std::to_string(budget.recent()) + " times within "
        + std::to_string(budget.window().count() / 1000)
        + " s (last: " + describe(reason) + "); the node gives up");
    SLUICE_ERROR("worker", describe(err));
    shut_down(self, std::move(err));
    return;
  }
  SLUICE_WARN("worker", st.node << ": its " << what << " ended ("
                                << describe(reason) << "); restarting it in "
                                << delay->count() << " ms (restart "
                                << budget.recent() << " of at most "
                                << budget.max_restarts() << " within "
                                << budget.window().count() / 1000 << " s)");
  if (is_block_manager)
    self->delayed_send(self, *delay, restart_bm_atom::value);
  else
    self->delayed_send(self, *delay, restart_te_atom::value);
}

/// The driver declared this node lost and gave its work to others: stop
/// everything of this incarnation, then (finish_rejoin) start afresh under
/// the next id. Receivers hand their blocks to `tracker` first; puts held
/// meanwhile go to the next BlockManager.
void rejoin(worker_ptr self, const caf::actor& tracker) {
  auto& st = self->state;
  auto old = st.node;
  st.node = st.identity->next_incarnation();
  SLUICE_WARN("worker", old << ": the driver declared this node lost; it "
                               "rejoins as a new incarnation "
                            << st.node << " (handing over "
                            << st.receivers.size()
                            << " receivers, then dropping "
                            << st.store->size() << " blocks)");
  st.rejoining = true;
  st.registered = false;
  std::vector<uint32_t> streams;
  for (auto& [stream, r] : st.receivers)
    streams.push_back(stream);
  for (auto stream : streams)
    hand_over(self, stream, tracker, "node " + old + " rejoins as " + st.node,
              true);
  for (auto* child : {&st.block_manager, &st.task_executor})
    if (*child) {
      self->send_exit(*child, caf::exit_reason::user_shutdown);
      st.retiring.push_back(std::move(*child));
      *child = caf::actor{};
    }
}

/// Once the old BlockManager and TaskExecutor ended (nothing of the old
/// incarnation writes into the store any more), drops every block and
/// registers the new incarnation.
void finish_rejoin(worker_ptr self) {
  auto& st = self->state;
  st.store->erase_prefix("");
  st.rejoining = false;
  spawn_block_manager(self);
  spawn_task_executor(self);
  register_with(self);
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
  if (st.rejoining || st.stopping)
    return make_error(errc::refused, st.node + " is rejoining or stopping");
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
  st.trackers[stream] = m.caps[0];
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
  opts.use_disk = st.settings.receiver_level.use_disk;
  opts.wal_rolling = st.settings.wal_rolling_interval;
  if (st.settings.wal_enable)
    opts.wal_dir = receiver_wal_dir(st.settings.checkpoint_dir, stream, st.node,
                                    incarnation);
  // The receiver's "BlockManager" is this actor, which forwards its puts to
  // the current one: the handle stays valid across BlockManager restarts.
  auto r = self->spawn(receiver, stream, st.node, m.caps[0],
                       caf::actor_cast<caf::actor>(self),
                       input->make_source(seed), opts);
  self->monitor(r);
  st.receivers.emplace(stream, r);
  return reply("receiver started on " + st.node, r);
}

/// A receiver ended: forget it, and report an abnormal end to the tracker
/// that started it (the tracker restarts receivers; it also learns of the
/// end through its own monitor, but the event says where and why).
void receiver_ended(worker_ptr self, std::map<uint32_t, caf::actor>::iterator i,
                    const caf::error& reason) {
  auto& st = self->state;
  auto stream = i->first;
  st.receivers.erase(i);
  auto tracker = st.trackers.find(stream);
  if (!reason || reason == caf::exit_reason::user_shutdown) {
    if (tracker != st.trackers.end())
      st.trackers.erase(tracker);
    return;
  }
  auto text = "receiver ended: " + describe(reason);
  SLUICE_WARN("worker", st.node << ": receiver of stream " << stream << " "
                                << text);
  if (tracker == st.trackers.end())
    return;
  capnp::MallocMessageBuilder b;
  auto ev = b.initRoot<wire::ReceiverEvent>();
  ev.setStream(stream);
  ev.setNode(st.node);
  ev.setKind(wire::ReceiverEvent::Kind::ERROR);
  ev.setMessage(text);
  self->send(tracker->second, make_msg<wire::ReceiverEvent>(b));
  st.trackers.erase(tracker);
}

void on_down(worker_ptr self, caf::down_msg& dm) {
  auto& st = self->state;
  if (st.driver && dm.source == st.driver.address()) {
    st.driver = caf::actor{};
    st.registered = false;
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
  if (st.block_manager && dm.source == st.block_manager.address()) {
    child_ended(self, true, dm.reason);
    return;
  }
  if (st.task_executor && dm.source == st.task_executor.address()) {
    child_ended(self, false, dm.reason);
    return;
  }
  for (auto i = st.retiring.begin(); i != st.retiring.end(); ++i)
    if (i->address() == dm.source) {
      st.retiring.erase(i);
      if (st.retiring.empty() && st.rejoining && !st.stopping)
        finish_rejoin(self);
      return;
    }
  for (auto i = st.receivers.begin(); i != st.receivers.end(); ++i)
    if (i->second.address() == dm.source) {
      receiver_ended(self, i, dm.reason);
      return;
    }
  auto& ho = st.handing_over;
  ho.erase(std::remove_if(ho.begin(), ho.end(),
                          [&](auto& r) { return r.address() == dm.source; }),
           ho.end());
}

void on_ack(worker_ptr self, const msg<wire::RegisterWorkerAck>& m) {
  auto& st = self->state;
  bool accepted = false;
  bool new_incarnation = false;
  std::string reason;
  std::string node;
  if (auto err = read_msg(m, [&](wire::RegisterWorkerAck::Reader r) {
        accepted = r.getAccepted();
        new_incarnation = r.getNewIncarnation();
        reason = r.getReason();
        node = r.getNode();
      })) {
    SLUICE_ERROR("worker", st.node << ": " << describe(err));
    return;
  }
  // An answer to a registration under an earlier id (several may be in
  // flight when the node rejoins) is stale.
  if (!node.empty() && node != st.node)
    return;
  if (new_incarnation) {
    if (!st.rejoining)
      rejoin(self, m.caps.empty() ? caf::actor{} : m.caps[0]);
    if (st.retiring.empty())
      finish_rejoin(self);
    return;
  }
  if (!accepted) {
    SLUICE_ERROR("worker", st.node << ": the driver refused this worker: "
                                   << reason);
    shut_down(self, make_error(errc::graph_mismatch, reason));
    return;
  }
  if (st.registered) {
    SLUICE_INFO("worker", st.node << ": the driver took its restarted "
                                     "BlockManager or TaskExecutor");
    return;
  }
  st.registered = true;
  SLUICE_INFO("worker", st.node << ": registered with the driver ("
                                << st.settings.executor_cores
                                << " task slots)");
}

} // namespace

caf::behavior worker_node(worker_ptr self, std::shared_ptr<node_identity> identity,
                          graph* g, run_settings settings, caf::actor driver,
                          std::shared_ptr<block_store> store) {
  auto& st = self->state;
  st.identity = std::move(identity);
  st.node = st.identity->current();
  st.g = g;
  st.settings = std::move(settings);
  st.store = store ? std::move(store) : std::make_shared<block_store>();
  spawn_block_manager(self);
  spawn_task_executor(self);
  if (driver) {
    st.driver = std::move(driver);
    self->monitor(st.driver);
    register_with(self);
  } else {
    st.driver_endpoint = st.settings.driver;
    connect(self);
  }
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  // Only others send exit messages here (no child is linked): the context
  // stopping, or a supervisor.
  self->set_exit_handler([self](caf::exit_msg& em) { shut_down(self, em.reason); });
  return {
    [self](connect_atom) {
      if (!self->state.driver)
        connect(self);
    },
    [self](restart_bm_atom) {
      auto& st = self->state;
      if (st.block_manager || st.rejoining || st.stopping)
        return;
      spawn_block_manager(self);
      SLUICE_INFO("worker", st.node << ": BlockManager restarted over the same "
                                    << st.store->size() << " blocks");
      register_with(self);
    },
    [self](restart_te_atom) {
      auto& st = self->state;
      if (st.task_executor || st.rejoining || st.stopping)
        return;
      spawn_task_executor(self);
      SLUICE_INFO("worker", st.node << ": TaskExecutor restarted");
      register_with(self);
    },
    [self](const msg<wire::RegisterWorkerAck>& m) { on_ack(self, m); },
    [self](const msg<wire::StartReceiver>& m)
      -> caf::result<msg<wire::ReceiverEvent>> { return start_receiver(self, m); },
    [self](const msg<wire::PutBlock>& m) -> caf::result<msg<wire::PutBlockAck>> {
      // A receiver's put, forwarded to the current BlockManager. Only this
      // node's receivers may put through it (those handing over included:
      // they report what they put, also into a new incarnation's store).
      auto& st = self->state;
      auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
      if (std::none_of(st.receivers.begin(), st.receivers.end(),
                       [&](auto& kv) { return kv.second.address() == sender; })
          && std::none_of(st.handing_over.begin(), st.handing_over.end(),
                          [&](auto& r) { return r.address() == sender; }))
        return make_error(errc::refused, "PutBlock to worker node " + st.node
                                           + " from an actor that is not one "
                                             "of its receivers");
      auto rp = self->make_response_promise();
      if (st.block_manager)
        rp.delegate(st.block_manager, m);
      else
        st.held_puts.emplace_back(std::move(rp), m);
      return caf::delegated<msg<wire::PutBlockAck>>{};
    },
    [self](const msg<wire::StopReceiver>& m) {
      // The tracker runs this stream elsewhere already (this node came back
      // after its receiver was replaced): one reader of a source at a time.
      uint32_t stream = 0;
      std::string why;
      if (auto err = read_msg(m, [&](wire::StopReceiver::Reader r) {
            stream = r.getStream();
            why = r.getReason();
          })) {
        SLUICE_WARN("worker", describe(err));
        return;
      }
      hand_over(self, stream, m.caps.empty() ? caf::actor{} : m.caps[0], why,
                false);
    },
    [self](node_children_atom) {
      return std::vector<caf::actor>{self->state.block_manager,
                                     self->state.task_executor};
    },
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
