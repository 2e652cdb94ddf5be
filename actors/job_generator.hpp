#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/block_store.hpp"
#include "runtime/clock.hpp"
#include "runtime/config.hpp"
#include "runtime/graph.hpp"
#include "runtime/listener.hpp"
#include "runtime/checkpoint/checkpoint.hpp"
#include "runtime/recovery/driver_log.hpp"
#include "runtime/recovery/recovery_plan.hpp"
#include "runtime/sources/directory_scanner.hpp"

namespace sluice {

/// State of the JobGenerator (driver).
///
/// At every batch time t (woken by its clock, so tests drive it with a
/// manual clock) it lists new files of directory streams, takes the next
/// batch of queue streams (stored in the driver's block store), asks the
/// ReceiverTracker to allocate blocks to t (sending it those other inputs,
/// which the tracker logs with the blocks as the batch's one driver log
/// record), and hands the JobSet to the JobScheduler; batches are generated
/// strictly in time order, and a batch that falls due while an earlier one
/// is still being generated waits. A batch whose allocation fails runs with
/// its other inputs only (they are taken already; its blocks stay
/// unallocated). When a batch completes it logs records, scheduling delay,
/// processing time and total delay, tells the listeners, and releases the
/// batch's blocks (ReleaseBatch: the tracker logs the cleanup).
///
/// stop_atom(graceful): graceful stops the receivers, generates one last
/// batch (at the next batch time) with everything they delivered, and
/// answers once every generated batch completed; otherwise it stops
/// generating and answers at once.
/// With a checkpoint directory (docs/recovery.md): every batch's inputs are
/// in the driver log (the tracker wrote them) before its JobSet goes out; a
/// metadata checkpoint is written after each batch is generated and after it
/// completes; a batch's inputs are released (and the logs cleaned) only
/// once no kept checkpoint could make a recovery re-run it. After a restart
/// it first re-runs what the recovery plan names, in time order: batches
/// recomputed for their state only, then the batches that were pending, then
/// the batches that fell due while the driver was down.
/// Lifetime: spawned by the driver's streaming_context.
struct job_generator_state {
  static const char* name;
  graph* g = nullptr;
  run_settings settings;
  std::shared_ptr<clock> clk;
  std::shared_ptr<listener_bus> listeners;
  std::shared_ptr<block_store> driver_store;
  caf::actor tracker;
  caf::actor scheduler;
  std::map<uint32_t, directory_scanner> scanners;
  time_ms interval = 1000;
  time_ms last_generated = 0;
  std::deque<time_ms> due;
  bool generating = false;
  std::set<time_ms> in_flight;
  std::set<time_ms> recomputing;       ///< recovery batches (state only)
  /// Batches a recovery recomputes or re-runs, until each completed (then
  /// listeners hear that the recovery finished).
  std::set<time_ms> recovering;
  bool stopping = false;
  bool final_requested = false;
  time_ms final_batch = 0;
  caf::response_promise stopped;
  time_ms remember = 0;               ///< keep inputs this long after a batch
  std::deque<time_ms> unreleased;     ///< completed batches whose inputs stay
  // -- durability (with a checkpoint directory) ------------------------------
  std::shared_ptr<driver_log> log;    ///< only to delete old segments
  std::unique_ptr<checkpoint_dir> checkpoints;
  std::shared_ptr<const recovery_plan> plan;
  time_ms first_batch = -1;
  time_ms max_completed = -1;
  std::map<uint32_t, state_checkpoint_ref> states;   ///< newest per node
  std::map<uint32_t, time_ms> state_times;
  std::deque<time_ms> horizons;       ///< of the metadata checkpoints kept
  size_t checkpoint_failures = 0;
};

caf::behavior job_generator(caf::stateful_actor<job_generator_state>* self,
                            graph* g, run_settings settings,
                            std::shared_ptr<clock> clk,
                            std::shared_ptr<listener_bus> listeners,
                            std::shared_ptr<block_store> driver_store,
                            caf::actor tracker, caf::actor scheduler,
                            time_ms remember, std::shared_ptr<driver_log> log,
                            std::shared_ptr<const recovery_plan> plan);

} // namespace sluice
