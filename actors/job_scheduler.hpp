#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "messages/schemas.hpp"
#include "runtime/clock.hpp"
#include "runtime/cluster/held_drops.hpp"
#include "runtime/config.hpp"
#include "runtime/exec/planner.hpp"
#include "runtime/graph.hpp"
#include "runtime/recovery/recovery_plan.hpp"
#include "actors/state_checkpointer.hpp"

namespace sluice {

/// A worker's TaskExecutor as the scheduler sees it.
struct executor_slot {
  caf::actor task_executor;
  uint32_t slots = 1;
  uint32_t busy = 0;
  uint64_t launched = 0; ///< placement spreads ties by it
};

/// One task of a running stage.
struct scheduled_task {
  uint64_t job = 0;
  uint32_t stage = 0;
  uint32_t partition = 0;
  std::vector<leaf_read> reads;
  uint32_t failures = 0;
  uint32_t attempt = 0;   ///< increases with every launch; late replies are stale
  bool running = false;
  bool done = false;
  std::string node;       ///< where the current attempt runs
  std::string last_error;
  /// When it last became pending: its locality wait counts from here.
  std::chrono::steady_clock::time_point pending_since;
};

struct stage_run {
  stage_plan plan;
  bool submitted = false;
  bool done = false;
  uint32_t tasks_left = 0;
  std::vector<scheduled_task> tasks;
  std::vector<buffer> results; ///< per partition, for collecting outputs
};

struct job_run {
  uint64_t id = 0;
  time_ms batch = 0;
  uint32_t output = 0;    ///< the output node, or the persisted node cached
  bool cache = false;     ///< caches a persisted node: runs alone, first
  std::vector<stage_run> stages;
  bool failed = false;
};

struct batch_run {
  time_ms time = 0;
  batch_inputs inputs;
  partition_counts counts;
  map_output_registry map_outputs;
  std::set<std::pair<uint32_t, uint32_t>> shuffles_done; ///< (shuffle, side)
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> file_records;
  uint64_t block_records = 0;
  uint64_t block_bytes = 0;
  uint32_t jobs = 0;
  uint32_t jobs_left = 0;
  uint32_t failed_jobs = 0;
  std::string error;
  time_ms submitted = 0;
  time_ms started = 0;
  bool recompute = false; ///< recovery: cache jobs only, no outputs
  bool final_batch = false; ///< last of a graceful stop: checkpoint all state
  std::vector<state_checkpoint_job> checkpoints; ///< being written
  caf::response_promise done;
};

/// State of the JobScheduler (driver).
///
/// Protocol: JobSet (a request) starts one job per output operation due in
/// the batch (preceded by one cache job per persisted node due, each run
/// alone, so windows of the batch see their parents' partitions) and is
/// answered with BatchCompleted once every job ended; jobs run in arrival
/// order, concurrent-jobs at a time. Cached partitions are dropped once the
/// longest window over them has passed. A job's stages run parents
/// first; each stage's tasks go to TaskExecutors with free slots, preferring
/// a node that holds the task's input for up to sluice.locality.wait
/// (runtime/exec/placement.hpp; a delayed dispatch at the earliest such
/// deadline keeps a waiting task from being stranded). A failed task is retried up to
/// task.max-failures times, then fails its job with an error naming the task
/// and the cause. WorkerChange adds or removes executors; the tasks of a lost
/// worker are retried elsewhere, tasks reading a block from it are launched
/// again (they skip the lost copy), and a started job whose map output it
/// held runs again from its first stage. Every worker's TaskExecutor and
/// BlockManager are monitored: when a TaskExecutor ends, its running tasks
/// fail (each counts against task.max-failures: CAF 0.17 never answers a
/// request whose promise died with its actor, and an infinite request would
/// wait forever) and run elsewhere; when a BlockManager ends, tasks reading
/// from its node wait (running ones elsewhere start again) and drops for it
/// are kept, until the node re-registers with a new one (a WorkerChange
/// `refreshed`, which replaces the handles) or is lost.
/// Map outputs of a batch are shared by its
/// jobs and dropped from every BlockManager once the batch completed.
/// With a checkpoint directory, a batch at which a stateful node reaches its
/// checkpoint interval completes only after that node's state partitions
/// are written to a data checkpoint (BatchCompleted lists them), so a
/// metadata checkpoint never names state that is not on disk. A recompute
/// JobSet (recovery) runs only the cache jobs, skipping state that was
/// restored from a data checkpoint.
/// Lifetime: spawned by the driver's streaming_context.
struct job_scheduler_state {
  static const char* name;
  graph* g = nullptr;
  run_settings settings;
  std::shared_ptr<clock> clk;
  std::map<std::string, executor_slot> executors;
  std::map<std::string, caf::actor> block_managers; ///< by node, incl. driver
  std::map<time_ms, batch_run> batches;
  std::map<uint64_t, job_run> jobs;
  std::deque<uint64_t> job_queue;   ///< not yet started, in order
  uint32_t running_jobs = 0;
  bool running_cache_job = false;
  cache_registry cache;             ///< persisted nodes' partitions by batch
  std::deque<std::pair<uint64_t, std::pair<uint32_t, uint32_t>>> pending; ///< (job, (stage, partition))
  uint64_t next_job = 1;
  /// Stateful nodes restored from a data checkpoint, and its batch: their
  /// state at or before it is never recomputed.
  std::map<uint32_t, time_ms> restored;
  std::set<uint32_t> checkpointing; ///< nodes whose state is being written
  std::shared_ptr<const recovery_plan> plan;
  /// Nodes whose BlockManager ended and that have not re-registered yet,
  /// and the DropBlocks held for their next BlockManager.
  held_drops<msg<wire::DropBlocks>> drops;
  /// The locality deadline a delayed dispatch is armed for, if any.
  std::optional<std::chrono::steady_clock::time_point> locality_timer;
};

caf::behavior job_scheduler(caf::stateful_actor<job_scheduler_state>* self,
                            graph* g, run_settings settings,
                            std::shared_ptr<clock> clk,
                            caf::actor driver_block_manager,
                            std::shared_ptr<const recovery_plan> plan);

} // namespace sluice
