#pragma once

// Driver-side planning: which partitions a batch has, which stages a job
// splits into, and what each task reads. Pure functions over the graph, so
// the JobScheduler holds only the protocol and the planner is unit-tested.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "messages/driver.capnp.h"
#include "runtime/exec/task_spec.hpp"
#include "runtime/graph.hpp"

namespace sluice {

/// One partition of an input node in one batch.
struct input_partition {
  bool is_file = false;
  block_ref block;    ///< when !is_file
  std::string file;   ///< when is_file
  uint64_t records = 0;
};

/// The inputs of a batch, by input node index.
using batch_inputs = std::map<uint32_t, std::vector<input_partition>>;

/// Writes `in` into `out`, which has exactly in.size() elements (JobSet
/// inputs and driver-log allocations share this layout).
void encode_inputs(const batch_inputs& in,
                   ::capnp::List<wire::InputPartitions>::Builder out);

/// Reads inputs back; throws kj::Exception on malformed input (callers run it
/// inside read_msg or an equivalent guard).
batch_inputs decode_inputs(::capnp::List<wire::InputPartitions>::Reader in);

/// Where the partitions of persisted nodes are kept, per batch time.
///
/// Owner: the JobScheduler (driver). Entries are created when a cache stage
/// starts, filled as its tasks report, and expired once no window can need
/// them any more.
class cache_registry {
public:
  /// Starts the entry of (node, t) with `partitions` empty slots.
  void begin(uint32_t node, time_ms t, uint32_t partitions);

  /// Fills slot p of (node, t).
  void set(uint32_t node, time_ms t, uint32_t p, block_ref ref);

  /// The partitions of (node, t), or nullptr if it was never cached.
  const std::vector<block_ref>* at(uint32_t node, time_ms t) const;

  /// The first batch time `node` was cached at, or -1 if never.
  time_ms first(uint32_t node) const;

  /// The partitions of `node` later batches may still read that no longer
  /// have a copy on a node `live` accepts, as (batch time, partition): the
  /// filled slots of its newest complete entry and of every newer entry
  /// (older ones were superseded, a state being read only by its successor).
  std::vector<std::pair<time_ms, uint32_t>>
  unreadable(uint32_t node, const std::function<bool(const std::string&)>& live) const;

  /// Removes the entries of `node` at times <= `upto`; returns their blocks.
  std::vector<block_ref> expire(uint32_t node, time_ms upto);

  size_t size() const noexcept {
    return entries_.size();
  }

private:
  std::map<std::pair<uint32_t, time_ms>, std::vector<block_ref>> entries_;
  std::map<uint32_t, time_ms> first_;
};

/// The cached partitions a window node reads at time `t`: its parent's
/// batches in (t - length, t], oldest first. Batches never cached (before the
/// stream began) contribute nothing.
std::vector<const block_ref*> window_sources(const node_base& window,
                                             const cache_registry& cache,
                                             time_ms t);

/// Partition counts of every node of `g` for batch `t` with these inputs
/// (an input without an entry has no partitions; windows count the cached
/// partitions they span).
partition_counts count_partitions(const graph& g, const batch_inputs& inputs,
                                  const cache_registry& cache = {},
                                  time_ms t = 0);

/// One stage of a job.
struct stage_plan {
  uint32_t id = 0;          ///< position in the job's stage list
  uint32_t final_node = 0;  ///< the node whose partitions the tasks compute
  task_action action = task_action::output;
  uint32_t target = 0;      ///< the shuffle node written, or the output node
  uint32_t side = 0;        ///< shuffle writes: which parent of the target
  std::vector<uint32_t> parents; ///< stages that must finish first
};

/// The stages of the job that runs output node `out`: one per parent of each
/// shuffle it depends on (each once, also in diamonds), then the output
/// stage, parents before children.
std::vector<stage_plan> plan_job(const graph& g, const node_base& out);

/// The stages of the job that stores every partition of persisted node `n`
/// in its batch (the final stage's action is task_action::cache).
std::vector<stage_plan> plan_cache_job(const graph& g, const node_base& n);

/// Where the map tasks of a batch's shuffles left their buckets.
class map_output_registry {
public:
  /// Records the output of one map task of `shuffle` (writing its parent
  /// `side`) that ran on `node`.
  void add(uint32_t shuffle, uint32_t side, uint32_t map_partition,
           const std::vector<shuffle_output>& outputs, const std::string& node);

  /// Forgets every output a lost node held; returns the shuffles affected.
  std::vector<uint32_t> remove_node(const std::string& node);

  /// True once `maps` map tasks of `shuffle`'s `side` reported.
  bool complete(uint32_t shuffle, uint32_t side, uint32_t maps) const;

  /// Blocks of bucket `b` written for `side`, in map partition order.
  std::vector<block_ref> bucket(uint32_t shuffle, uint32_t side,
                                uint32_t b) const;

  /// Every shuffle block id (for cleanup).
  std::vector<std::string> block_ids() const;

private:
  struct map_output {
    std::string node;
    std::vector<shuffle_output> outputs;
  };
  // (shuffle node, side) -> map partition -> output
  std::map<std::pair<uint32_t, uint32_t>, std::map<uint32_t, map_output>> outputs_;
};

/// The leaf reads of partition `p` of `final_node`. Throws std::logic_error
/// if an input or shuffle it needs is missing (a scheduler bug).
std::vector<leaf_read> plan_reads(const graph& g, const partition_counts& counts,
                                  const batch_inputs& inputs,
                                  const map_output_registry& outputs,
                                  uint32_t final_node, uint32_t p,
                                  const cache_registry& cache = {},
                                  time_ms t = 0);

} // namespace sluice
