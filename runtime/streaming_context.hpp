#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "runtime/block_store.hpp"
#include "runtime/clock.hpp"
#include "runtime/config.hpp"
#include "runtime/dstream.hpp"
#include "runtime/graph.hpp"
#include "runtime/listener.hpp"
#include "runtime/cluster/node_identity.hpp"
#include "runtime/recovery/recovery_plan.hpp"

namespace sluice {

/// The entry point of a sluice application (Spark's StreamingContext).
///
/// Build the DStream graph with the source methods and dstream operators,
/// then start(). What start() spawns depends on the mode of the settings:
/// local (driver and N workers in this actor system), driver (publishes the
/// membership actor on settings.listen), or worker (finds the driver at
/// settings.driver). Every process of an application must build the same
/// graph.
///
/// Embedding: the actor_system must come from a sluice::config, or from a
/// config prepared with sluice::prepare_config(), so that sluice's message
/// types are registered. Lifetime: the context must outlive nothing it
/// spawned: stop() (or the destructor) terminates every actor it spawned
/// and waits for them. Concurrency: build and start from one thread; stop(),
/// await_termination() and listeners may be used from any thread.
class streaming_context {
public:
  streaming_context(caf::actor_system& sys, run_settings settings,
                    std::shared_ptr<sluice::clock> clk = nullptr);

  ~streaming_context();

  streaming_context(const streaming_context&) = delete;
  streaming_context& operator=(const streaming_context&) = delete;

  /// Spark's getOrCreate: builds the graph with `factory` (C++ cannot
  /// restore closures, so the graph is always rebuilt by the application),
  /// and, when `checkpoint_dir` holds a checkpoint, prepares its recovery:
  /// the graph must match the checkpoint (batch interval, the ids of the
  /// stateful operators), its state is restored, and start() re-runs the
  /// batches the crashed driver had not completed (docs/recovery.md). The error
  /// names the file or the mismatch; nothing is reset silently.
  static caf::expected<std::unique_ptr<streaming_context>>
  get_or_create(caf::actor_system& sys, run_settings settings,
                const std::string& checkpoint_dir,
                const std::function<void(streaming_context&)>& factory,
                std::shared_ptr<sluice::clock> clk = nullptr);

  /// The recovery start() performs, if the checkpoint directory held a
  /// checkpoint (after get_or_create() or start()); null otherwise.
  std::shared_ptr<const recovery_plan> recovery() const noexcept {
    return plan_;
  }

  // -- sources ---------------------------------------------------------------

  /// Lines read from a TCP server (socketTextStream).
  dstream<std::string> socket_text_stream(std::string host, uint16_t port);

  /// Lines of the files that arrive in `dir` (textFileStream): each file is
  /// read once, by the batch that finds it.
  dstream<std::string> text_file_stream(std::string dir);

  /// Generated text at `rate` lines/s per receiver (0: as fast as it goes).
  dstream<std::string> generator_stream(uint64_t rate);

  /// Batches given up front or pushed later with push_batch(); each batch
  /// time takes the next one (one_at_a_time) or all queued ones.
  template <class T>
  dstream<T> queue_stream(std::vector<std::vector<T>> batches = {},
                          bool one_at_a_time = true) {
    std::deque<std::vector<T>> q{std::make_move_iterator(batches.begin()),
                                 std::make_move_iterator(batches.end())};
    auto* node = graph_.add(
      std::make_unique<queue_input_node<T>>(std::move(q), one_at_a_time));
    return dstream<T>{this, node};
  }

  /// Appends a batch to a queue stream (thread-safe, also while running).
  template <class T>
  void push_batch(const dstream<T>& queue, std::vector<T> batch) {
    auto* node = dynamic_cast<queue_input_node<T>*>(queue.node());
    if (node == nullptr)
      throw std::invalid_argument("push_batch needs a queue_stream");
    node->push(std::move(batch));
  }

  /// A stream from a custom receiver: `make(seed)` builds the source a
  /// Receiver runs on a worker; the source pushes records of type T.
  template <class T>
  dstream<T> receiver_stream(std::string op,
                             std::function<source_ptr(uint64_t)> make) {
    auto* node = graph_.add(
      std::make_unique<receiver_input_node<T>>(std::move(op), std::move(make)));
    return dstream<T>{this, node};
  }

  /// The union of several streams of the same type.
  template <class T>
  dstream<T> union_of(const std::vector<dstream<T>>& xs) {
    if (xs.empty())
      throw std::invalid_argument("union_of needs at least one stream");
    std::vector<typed_node<T>*> parents;
    for (auto& x : xs)
      parents.push_back(x.node());
    return dstream<T>{this, graph_.add(std::make_unique<union_node<T>>(parents))};
  }

  /// Keeps every batch's input blocks and persisted partitions at least
  /// `d` after the batch (Spark's remember), e.g. for ad-hoc queries of
  /// recent data; windows and state keep what they need anyway.
  void remember(std::chrono::milliseconds d);

  // -- lifecycle -------------------------------------------------------------

  /// Spawns the actors of this process's role. Fails (and spawns nothing
  /// that keeps running) on an invalid graph, an address it cannot listen
  /// on, or a checkpoint directory it cannot recover from. A driver whose
  /// checkpoint directory holds a checkpoint recovers from it (see
  /// get_or_create).
  caf::error start();

  /// Stops the context. Graceful (on the driver): stop the receivers,
  /// process everything they received, then tell the workers to exit.
  /// Idempotent.
  void stop(bool graceful = true);

  /// Blocks until the context stopped; returns why, if abnormally (e.g. a
  /// worker refused by its driver).
  caf::error await_termination();

  /// Like await_termination, up to `timeout`; true if terminated.
  bool await_termination_for(std::chrono::milliseconds timeout);

  // -- properties ------------------------------------------------------------

  void add_listener(std::shared_ptr<listener> x);

  const run_settings& settings() const noexcept {
    return settings_;
  }

  sluice::graph& graph() noexcept {
    return graph_;
  }

  sluice::clock& clock() noexcept {
    return *clock_;
  }

  caf::actor_system& system() noexcept {
    return sys_;
  }

  /// The port the driver listens on (cluster driver, after start()).
  uint16_t port() const noexcept {
    return port_;
  }

  /// Blocks held by this process's BlockManagers (local mode: the driver's
  /// and every in-process worker's), for metrics and tests.
  struct block_stats {
    size_t blocks = 0;
    uint64_t bytes = 0;
  };
  block_stats stored_blocks() const;

  /// The block stores of this process (local mode: the driver's first, then
  /// one per worker; a worker: its own), for inspection and failure tests.
  const std::vector<std::shared_ptr<block_store>>& local_stores() const noexcept {
    return stores_;
  }

  /// This process's node id (workers: the id of its first incarnation; one
  /// the driver declared lost rejoins as `<id>-i2`, `-i3`, ...), or "driver".
  const std::string& node_id() const noexcept {
    return node_id_;
  }

  /// The worker node actors of this process (local mode: one per in-process
  /// worker, in order; a worker: its current one, which changes when the
  /// context restarts it after a crash). For inspection and failure tests:
  /// a worker node answers node_children_atom (actors/worker_node.hpp) with
  /// its BlockManager and TaskExecutor. Thread-safe.
  std::vector<caf::actor> worker_nodes() const;

private:
  /// Loads the newest valid checkpoint of the checkpoint directory, checks
  /// the graph against it, replays the driver log and restores state into
  /// the driver's store. No checkpoint: no plan, no error.
  caf::error prepare_recovery();

  void spawn_driver();
  void terminated(caf::error reason);
  void kill_all();

  caf::actor_system& sys_;
  run_settings settings_;
  std::shared_ptr<sluice::clock> clock_;
  std::shared_ptr<listener_bus> listeners_;
  sluice::graph graph_;
  std::string node_id_;
  uint16_t port_ = 0;
  time_ms remember_ = 0;

  caf::actor generator_;
  caf::actor scheduler_;
  caf::actor tracker_;
  caf::actor membership_;
  caf::actor driver_bm_;
  mutable std::mutex workers_mtx_; ///< guards workers_ (the watcher restarts)
  std::vector<caf::actor> workers_;
  std::shared_ptr<node_identity> identity_; ///< worker mode
  std::vector<std::shared_ptr<block_store>> stores_;
  caf::actor watcher_;
  std::shared_ptr<const recovery_plan> plan_;
  bool recovery_prepared_ = false;

  bool started_ = false;
  bool stopped_ = false;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool terminated_ = false;
  caf::error reason_;
};

/// Registers sluice's message types and error category with a config an
/// embedding application builds itself (sluice::config does this already).
void prepare_config(caf::actor_system_config& cfg);

/// Runs a sluice application from main(): parses the options (sluice's and
/// those `add_options` adds), builds the graph with `setup`, and runs in the
/// mode the options name until --duration elapses (driver and local mode;
/// workers stop with their driver), SIGINT/SIGTERM arrives, or (on a
/// worker) the driver stops. Returns the exit code: 0 after a clean
/// stop, 1 on a runtime failure, 2 on bad options or an invalid graph.
int run(int argc, char** argv,
        const std::function<void(config&)>& add_options,
        const std::function<void(streaming_context&)>& setup);

} // namespace sluice
