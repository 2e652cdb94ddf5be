#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/exec/task_spec.hpp"

namespace sluice {

/// A live TaskExecutor's slots, as placement sees them.
struct executor_load {
  uint32_t slots = 1;
  uint32_t busy = 0;
  uint64_t launched = 0; ///< tasks ever launched there: spreads ties

  bool free() const noexcept {
    return busy < slots;
  }
};

/// What placement knows about one pending task.
struct placement_task {
  using time_point = std::chrono::steady_clock::time_point;

  /// Bytes of the task's input each node holds (input_bytes_by_node).
  std::map<std::string, uint64_t> input_bytes;
  /// The node its last attempt failed on (empty: it never failed). It is
  /// no preferred node, and the last choice of the fallback.
  std::string avoid;
  /// When the task became pending (again, after a failure).
  time_point pending_since;
};

/// Where a pending task goes now.
struct placement_decision {
  enum class kind {
    run,     ///< launch it on `node`
    wait,    ///< leave it pending: a preferred node may free a slot by `until`
    no_slot, ///< no executor has a free slot
  };
  kind what = kind::no_slot;
  std::string node;
  placement_task::time_point until;
};

/// Delay scheduling (Spark's spark.locality.wait, from Zaharia et al.,
/// "Delay scheduling", EuroSys 2010): a task runs on a free slot of a
/// preferred node (a live executor holding some of its input, the one
/// holding the most bytes first, then the least busy); when every
/// preferred node is busy it waits until `locality_wait` after it became
/// pending, then takes any free slot (the least busy, the node it failed on
/// last). A task without a live preferred node runs anywhere at once.
/// Remaining ties go to the executor that was given the fewest tasks, so
/// idle executors take turns (a new worker is not passed over because of
/// its name) instead of the first in order taking everything.
///
/// A pure function, so a unit test drives it without actors; the
/// JobScheduler calls it for each pending task.
placement_decision
place_task(const placement_task& task,
           const std::map<std::string, executor_load>& executors,
           placement_task::time_point now,
           std::chrono::milliseconds locality_wait);

/// Bytes of a task's inputs each node holds: every location of a block
/// read, and of every map output a shuffle read fetches (each copy counts
/// the full block). File reads have no location.
std::map<std::string, uint64_t>
input_bytes_by_node(const std::vector<leaf_read>& reads);

} // namespace sluice
