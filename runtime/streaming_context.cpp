#include "runtime/streaming_context.hpp"

#include <algorithm>
#include <csignal>
#include <iostream>
#include <random>

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <unistd.h>

#include "actors/atoms.hpp"
#include "actors/block_manager.hpp"
#include "actors/job_generator.hpp"
#include "actors/job_scheduler.hpp"
#include "actors/membership.hpp"
#include "actors/receiver_tracker.hpp"
#include "actors/worker_node.hpp"
#include "messages/schemas.hpp"
#include "runtime/log.hpp"
#include "runtime/cluster/node_identity.hpp"
#include "runtime/cluster/restart_budget.hpp"
#include "runtime/event_log.hpp"
#include "runtime/supervisor.hpp"
#include "runtime/recovery/recover.hpp"

namespace sluice {

graph& graph_of(streaming_context& ctx) {
  return ctx.graph();
}

uint32_t default_parallelism_of(const streaming_context& ctx) {
  return ctx.settings().default_parallelism;
}

output_ref& output_ref::name(std::string id) {
  if (auto err = ctx_->graph().rename(node_, std::move(id)))
    throw std::invalid_argument(describe(err));
  return *this;
}

void prepare_config(caf::actor_system_config& cfg) {
  add_message_types(cfg);
  add_error_category(cfg);
}

namespace {

/// The watcher of a worker process restarts its worker node after a crash.
using restart_worker_atom = caf::atom_constant<caf::atom("restartwn")>;

/// Restarts of a crashed worker node a worker process allows within a
/// minute before it gives up and exits with the error.
constexpr uint32_t worker_node_max_restarts = 3;

/// True if a worker node that ended with `reason` crashed and may be
/// restarted: not a clean stop (the driver's Shutdown, the context's
/// stop), and not a refusal a restart would meet again (another graph).
bool restartable(const caf::error& reason) {
  if (!reason || reason == caf::exit_reason::user_shutdown
      || reason == caf::exit_reason::normal)
    return false;
  return !(reason.category() == error_category()
           && reason.code() == static_cast<uint8_t>(errc::graph_mismatch));
}

std::string make_worker_id() {
  char host[128] = "host";
  ::gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  // Unique per process incarnation: a restarted worker is a new node.
  return std::string{"worker-"} + host + "-" + std::to_string(::getpid()) + "-"
         + std::to_string(rd() % 100000);
}

/// A BlockManager's store as the settings say (memory budget, spill
/// directory under local-dir named after the node).
std::shared_ptr<block_store> make_store(const run_settings& s,
                                        const std::string& node) {
  block_store_options opts;
  opts.memory_budget = s.block_manager_memory;
  opts.local_dir = s.block_manager_local_dir;
  opts.tag = node;
  return std::make_shared<block_store>(std::move(opts));
}

} // namespace

streaming_context::streaming_context(caf::actor_system& sys,
                                     run_settings settings,
                                     std::shared_ptr<sluice::clock> clk)
  : sys_(sys),
    settings_(std::move(settings)),
    clock_(clk ? std::move(clk) : std::make_shared<system_clock>()),
    listeners_(std::make_shared<listener_bus>()) {
  node_id_ = settings_.mode == run_mode::worker ? make_worker_id() : "driver";
  graph_.set_batch_interval(settings_.batch_interval.count());
}

streaming_context::~streaming_context() {
  stop(false);
}

dstream<std::string> streaming_context::socket_text_stream(std::string host,
                                                           uint16_t port) {
  auto make = [host, port](uint64_t) { return make_socket_source(host, port); };
  return receiver_stream<std::string>("socket_text_stream", make);
}

dstream<std::string> streaming_context::text_file_stream(std::string dir) {
  return dstream<std::string>{
    this, graph_.add(std::make_unique<directory_input_node>(std::move(dir)))};
}

dstream<std::string> streaming_context::generator_stream(uint64_t rate) {
  auto make = [rate](uint64_t seed) { return make_generator_source(rate, seed); };
  return receiver_stream<std::string>("generator_stream", make);
}

void streaming_context::remember(std::chrono::milliseconds d) {
  if (graph_.frozen())
    throw std::logic_error("remember() must be called before start()");
  if (d.count() < 0)
    throw std::invalid_argument("remember: the duration must not be negative");
  remember_ = d.count();
}

void streaming_context::add_listener(std::shared_ptr<listener> x) {
  listeners_->add(std::move(x));
}

streaming_context::block_stats streaming_context::stored_blocks() const {
  block_stats result;
  for (auto& s : stores_) {
    result.blocks += s->size();
    result.bytes += s->bytes();
  }
  return result;
}

void streaming_context::spawn_driver() {
  auto store = stores_.front();
  std::shared_ptr<driver_log> log;
  if (!settings_.checkpoint_dir.empty()) {
    auto opened = driver_log::open(settings_.checkpoint_dir,
                                   settings_.wal_rolling_interval.count());
    if (opened)
      log = std::move(*opened);
    else
      SLUICE_ERROR("driver", "the driver log cannot be opened ("
                               << describe(opened.error())
                               << "): batches run, but a restart cannot "
                                  "recover them");
  }
  driver_bm_ = sys_.spawn(block_manager, std::string{"driver"}, store);
  // Not detached, although both wait for fsync (the driver log once per
  // block, checkpoints twice per batch, a few ms each): a detached actor
  // outlives a stop while a clock still holds a wake-up for it, and the
  // actor system's destructor would wait for it.
  scheduler_ = sys_.spawn(job_scheduler, &graph_, settings_, clock_, driver_bm_,
                          plan_);
  tracker_ = sys_.spawn(receiver_tracker, &graph_, settings_, listeners_, clock_,
                        scheduler_, log, plan_);
  generator_ = sys_.spawn(job_generator, &graph_, settings_, clock_, listeners_,
                          store, tracker_, scheduler_, remember_, log, plan_);
  membership_ = sys_.spawn(membership, graph_.fingerprint(),
                           static_cast<uint32_t>(graph_.size()), tracker_,
                           scheduler_, listeners_);
}

caf::expected<std::unique_ptr<streaming_context>>
streaming_context::get_or_create(caf::actor_system& sys, run_settings settings,
                                 const std::string& checkpoint_dir,
                                 const std::function<void(streaming_context&)>& factory,
                                 std::shared_ptr<sluice::clock> clk) {
  settings.checkpoint_dir = checkpoint_dir;
  auto ctx = std::make_unique<streaming_context>(sys, std::move(settings),
                                                 std::move(clk));
  try {
    factory(*ctx);
  } catch (const std::exception& e) {
    return make_error(errc::bad_graph,
                      std::string{"invalid application: "} + e.what());
  }
  if (ctx->settings_.mode != run_mode::worker) {
    ctx->stores_.push_back(make_store(ctx->settings_, "driver"));
    if (auto err = ctx->prepare_recovery())
      return err;
  }
  return ctx;
}

caf::error streaming_context::start() {
  if (started_)
    return make_error(errc::refused, "the context was already started");
  if (auto err = graph_.validate())
    return err;
  if (settings_.checkpoint_dir.empty())
    for (auto& n : graph_.nodes())
      if (n->requires_checkpoint())
        return make_error(errc::bad_graph,
                          n->op() + " (" + n->id()
                            + ") keeps state across batches and needs a "
                              "checkpoint directory: set "
                              "--sluice.checkpoint.dir=DIR");
  for (auto& n : graph_.nodes())
    if (n->persisted())
      n->retain_for(remember_);
  graph_.freeze();
  if (settings_.mode != run_mode::worker) {
    if (stores_.empty())
      stores_.push_back(make_store(settings_, "driver"));
    if (auto err = prepare_recovery()) {
      stores_.clear();
      return err;
    }
  }
  if (settings_.mode != run_mode::worker && !settings_.event_log.empty()) {
    auto events = event_log::open(settings_.event_log);
    if (!events) {
      stores_.clear();
      return events.error();
    }
    listeners_->add(std::move(*events));
  }
  started_ = true;
  std::vector<caf::actor> watched;
  switch (settings_.mode) {
    case run_mode::local:
      spawn_driver();
      for (uint32_t i = 0; i < settings_.local_workers; ++i) {
        auto name = "local-" + std::to_string(i + 1);
        stores_.push_back(make_store(settings_, name));
        std::lock_guard<std::mutex> guard{workers_mtx_};
        workers_.push_back(sys_.spawn(worker_node,
                                      std::make_shared<node_identity>(name),
                                      &graph_, settings_, membership_,
                                      stores_.back()));
      }
      // The scheduler ends by itself when a worker took the only copy of
      // state with it: the driver then stops, to recover by a restart.
      watched = {generator_, scheduler_};
      break;
    case run_mode::driver: {
      spawn_driver();
      auto& ep = settings_.listen;
      auto port = sys_.middleman().publish(membership_, ep.port, ep.host.c_str(),
                                           true);
      if (!port) {
        auto err = make_error(errc::refused, "cannot listen on " + ep.host + ":"
                                               + std::to_string(ep.port) + ": "
                                               + describe(port.error()));
        kill_all();
        return err;
      }
      port_ = *port;
      SLUICE_INFO("driver", "listening on " << ep.host << ":" << port_);
      // The scheduler ends by itself when a worker took the only copy of
      // state with it: the driver then stops, to recover by a restart.
      watched = {generator_, scheduler_};
      break;
    }
    case run_mode::worker: {
      // A port of its own, so peers connect directly (automatic
      // connections) instead of through the driver.
      auto& ep = settings_.listen;
      auto port = sys_.middleman().open(ep.port, ep.host.c_str(), true);
      if (!port)
        SLUICE_WARN("worker", node_id_ << ": cannot listen on " << ep.host << ":"
                                       << ep.port << " (" << describe(port.error())
                                       << "); block reads from other workers "
                                          "go through the driver");
      stores_.push_back(make_store(settings_, node_id_));
      identity_ = std::make_shared<node_identity>(node_id_);
      {
        std::lock_guard<std::mutex> guard{workers_mtx_};
        workers_.push_back(sys_.spawn(worker_node, identity_, &graph_, settings_,
                                      caf::actor{}, stores_.back()));
        watched = workers_;
      }
      SLUICE_INFO("worker", node_id_ << ": looking for the driver at "
                                     << settings_.driver.host << ":"
                                     << settings_.driver.port);
      break;
    }
  }
  // The watcher turns the end of the role's main actor into termination; in
  // a worker process it first restarts a worker node that crashed, with
  // the same identity and block store (a budget of restarts a minute), so
  // a bug in one message does not end a process holding blocks.
  watcher_ = sys_.spawn([this, watched](caf::event_based_actor* self) -> caf::behavior {
    for (auto& a : watched)
      self->monitor(a);
    auto budget = std::make_shared<restart_budget>(
      worker_node_max_restarts, std::chrono::minutes{1},
      std::chrono::milliseconds{200}, std::chrono::seconds{2});
    self->set_down_handler([this, self, budget](caf::down_msg& dm) {
      if (settings_.mode == run_mode::worker && restartable(dm.reason)) {
        if (auto delay = budget->on_crash(std::chrono::steady_clock::now())) {
          SLUICE_WARN("worker", identity_->current()
                                  << ": the worker node crashed ("
                                  << describe(dm.reason) << "); restarting it in "
                                  << delay->count()
                                  << " ms with the same node id and blocks");
          self->delayed_send(self, *delay, restart_worker_atom::value);
          return;
        }
        SLUICE_ERROR("worker", identity_->current()
                                 << ": the worker node crashed "
                                 << budget->recent()
                                 << " times within a minute; giving up");
      }
      terminated(dm.reason);
      self->quit();
    });
    return {
      [](stop_atom) {},
      [this, self](restart_worker_atom) {
        auto w = sys_.spawn(worker_node, identity_, &graph_, settings_,
                            caf::actor{}, stores_.back());
        self->monitor(w);
        std::lock_guard<std::mutex> guard{workers_mtx_};
        workers_ = {std::move(w)};
      },
    };
  });
  if (settings_.mode != run_mode::worker)
    caf::anon_send(generator_, start_atom::value);
  return caf::none;
}

void streaming_context::terminated(caf::error reason) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (terminated_)
    return;
  terminated_ = true;
  if (reason && reason != caf::exit_reason::user_shutdown
      && reason != caf::exit_reason::normal)
    reason_ = std::move(reason);
  cv_.notify_all();
}

void streaming_context::kill_all() {
  caf::scoped_actor self{sys_};
  // The watcher first: once it is gone it restarts no worker node, and the
  // list of worker nodes read below is final.
  std::vector<caf::actor> all{watcher_, generator_, scheduler_, tracker_,
                              membership_, driver_bm_};
  {
    std::lock_guard<std::mutex> guard{workers_mtx_};
    all.insert(all.end(), workers_.begin(), workers_.end());
  }
  for (size_t i = 0; i < all.size(); ++i) {
    auto a = all[i]; // a copy: `all` may grow below
    if (!a)
      continue;
    self->send_exit(a, caf::exit_reason::user_shutdown);
    self->wait_for(a);
    if (i == 0) {
      // A worker node the watcher restarted meanwhile is stopped too.
      std::lock_guard<std::mutex> guard{workers_mtx_};
      for (auto& w : workers_)
        if (std::find(all.begin(), all.end(), w) == all.end())
          all.push_back(w);
    }
  }
  generator_ = scheduler_ = tracker_ = membership_ = driver_bm_ = watcher_
    = caf::actor{};
  std::lock_guard<std::mutex> guard{workers_mtx_};
  workers_.clear();
}

std::vector<caf::actor> streaming_context::worker_nodes() const {
  std::lock_guard<std::mutex> guard{workers_mtx_};
  return workers_;
}

void streaming_context::stop(bool graceful) {
  if (!started_ || stopped_)
    return;
  stopped_ = true;
  if (settings_.mode != run_mode::worker && generator_) {
    caf::scoped_actor self{sys_};
    auto timeout = settings_.graceful_stop_timeout
                   + std::chrono::milliseconds{1000};
    self->request(generator_, timeout, stop_atom::value, graceful)
      .receive([](bool) {},
               [&](caf::error& err) {
                 if (err == caf::sec::request_timeout)
                   SLUICE_ERROR("context",
                                "graceful stop gave up after "
                                  << timeout.count()
                                  << " ms (sluice.graceful-stop-timeout): "
                                     "batches still pending are not processed "
                                     "(no worker, or workers too slow)");
                 else
                   SLUICE_ERROR("context", "the stop did not finish cleanly: "
                                             << describe(err));
               });
    // Workers leave only when the driver stops because it was told to. A
    // driver that ended on an error (state_lost, a failed recovery) is
    // about to be restarted by its supervisor, which adopts the workers and
    // their receivers: telling them to shut down would leave the restarted
    // driver without a cluster.
    bool failed = false;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      failed = terminated_ && reason_;
    }
    if (settings_.mode == run_mode::driver && !failed) {
      self->request(membership_, std::chrono::seconds{10},
                    shutdown_workers_atom::value, std::string{"the driver stopped"})
        .receive([](size_t n) {
                   SLUICE_INFO("driver", "told " << n << " workers to shut down");
                 },
                 [](caf::error&) {});
    }
  }
  kill_all();
  terminated(caf::none);
}

caf::error streaming_context::await_termination() {
  std::unique_lock<std::mutex> guard{mtx_};
  cv_.wait(guard, [this] { return terminated_; });
  return reason_;
}

bool streaming_context::await_termination_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> guard{mtx_};
  return cv_.wait_for(guard, timeout, [this] { return terminated_; });
}

caf::error streaming_context::prepare_recovery() {
  if (recovery_prepared_ || settings_.checkpoint_dir.empty())
    return caf::none;
  auto plan = load_recovery_plan(graph_, settings_, *stores_.front());
  if (!plan)
    return plan.error(); // a later start() tries again, never skips it
  plan_ = std::move(*plan);
  recovery_prepared_ = true;
  return caf::none;
}

// -- run() ----------------------------------------------------------------------

int run(int argc, char** argv, const std::function<void(config&)>& add_options,
        const std::function<void(streaming_context&)>& setup) {
  // Signals are taken synchronously by the main thread below; block them
  // before any thread exists so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  config cfg;
  if (add_options)
    add_options(cfg);
  if (auto err = cfg.parse_args(argc, argv)) {
    std::cerr << "error: " << describe(err) << "\n";
    return 2;
  }
  auto& settings = cfg.sluice_settings;
  if (settings.supervise)
    return supervise(argc, argv); // before any thread: it forks
  caf::actor_system sys{cfg};
  int rc = 0;
  {
    auto created = streaming_context::get_or_create(sys, settings,
                                                    settings.checkpoint_dir, setup);
    if (!created) {
      std::cerr << "error: " << describe(created.error()) << "\n";
      return created.error().code() == static_cast<uint8_t>(errc::bad_graph) ? 2 : 1;
    }
    auto& ssc = **created;
    if (auto err = ssc.start()) {
      std::cerr << "error: " << describe(err) << "\n";
      return err.code() == static_cast<uint8_t>(errc::bad_graph) ? 2 : 1;
    }
    auto deadline = std::chrono::steady_clock::now() + settings.duration;
    // A cluster stops when its driver does: a worker leaving on its own
    // timer would strand the driver's last batches.
    if (settings.mode == run_mode::worker && settings.duration.count() > 0) {
      SLUICE_INFO("main", "--duration applies to the driver; this worker "
                          "stops when the driver tells it to");
      settings.duration = std::chrono::seconds{0};
    }
    bool stopped = false;
    while (!stopped) {
      if (ssc.await_termination_for(std::chrono::milliseconds{0}))
        break;
      if (settings.duration.count() > 0
          && std::chrono::steady_clock::now() >= deadline) {
        SLUICE_INFO("main", "--duration elapsed: stopping gracefully");
        ssc.stop(true);
        stopped = true;
        break;
      }
      timespec wait{0, 100 * 1000 * 1000};
      auto sig = sigtimedwait(&signals, nullptr, &wait);
      if (sig == SIGINT || sig == SIGTERM) {
        bool graceful = settings.stop_gracefully_on_shutdown;
        SLUICE_INFO("main", (sig == SIGINT ? "SIGINT" : "SIGTERM")
                              << ": stopping"
                              << (graceful ? " gracefully" : ""));
        ssc.stop(graceful);
        stopped = true;
      }
    }
    if (auto err = ssc.await_termination()) {
      std::cerr << "error: " << describe(err) << "\n";
      rc = err.category() == error_category()
               && err.code() == static_cast<uint8_t>(errc::state_lost)
             ? exit_restart_to_recover
             : 1;
    }
    ssc.stop(false);
  }
  return rc;
}

} // namespace sluice
