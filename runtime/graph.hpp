#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/block.hpp"
#include "runtime/buffer.hpp"
#include "runtime/clock.hpp"
#include "runtime/error.hpp"
#include "runtime/storage_level.hpp"
#include "runtime/stored_block.hpp"

namespace sluice {

class task_context;

/// The side of a leaf read that carries a persisted node's partition as
/// cached earlier in the batch (instead of recomputing it).
constexpr uint32_t cached_side = 0xffffffff;

/// The side of a leaf read that carries a stateful node's previous state.
constexpr uint32_t state_side = 0xfffffffe;

/// What a node of the DStream graph is, for the planner.
enum class node_kind : uint8_t {
  receiver_input,  ///< blocks cut by a Receiver on a worker
  directory_input, ///< files that arrived in a directory (listed by the driver)
  queue_input,     ///< batches handed to the driver (tests, replays)
  narrow,          ///< one parent, partition i from parent partition i
  union_,          ///< partitions of all parents, concatenated
  shuffle,         ///< reads buckets written by the tasks of its parent
  window,          ///< reads its parent's cached partitions of several batches
  output,          ///< an output operation: one job per batch it is due
};

const char* to_string(node_kind x);

/// Partition counts of the graph's nodes in one batch, by node index.
class partition_counts {
public:
  void set(uint32_t node, uint32_t count);

  /// The count of `node`; throws std::out_of_range if unknown.
  uint32_t at(uint32_t node) const;

  bool contains(uint32_t node) const {
    return counts_.count(node) > 0;
  }

  const std::unordered_map<uint32_t, uint32_t>& all() const {
    return counts_;
  }

private:
  std::unordered_map<uint32_t, uint32_t> counts_;
};

class graph;

/// One node of the DStream graph.
///
/// Every process builds the same graph by running the same setup function, so
/// a node's index (its creation order, which is also a topological order) and
/// its id are the same everywhere; tasks and checkpoints name nodes by them.
/// Lifetime: owned by the graph. Concurrency: immutable once the streaming
/// context started, so tasks on several threads may compute through the same
/// node at once (user functions must be thread-safe for the same reason).
class node_base {
public:
  node_base(node_kind kind, std::string op, std::vector<node_base*> parents);

  virtual ~node_base();

  uint32_t index() const noexcept {
    return index_;
  }

  /// The stable id: an explicit name, else "<op>-<index>".
  const std::string& id() const noexcept {
    return id_;
  }

  /// The operator ("map", "reduce_by_key", "socket_text_stream", ...).
  const std::string& op() const noexcept {
    return op_;
  }

  node_kind kind() const noexcept {
    return kind_;
  }

  const std::vector<node_base*>& parents() const noexcept {
    return parents_;
  }

  bool is_leaf() const noexcept {
    return kind_ == node_kind::receiver_input
           || kind_ == node_kind::directory_input
           || kind_ == node_kind::queue_input || kind_ == node_kind::shuffle
           || kind_ == node_kind::window;
  }

  bool is_input() const noexcept {
    return kind_ == node_kind::receiver_input
           || kind_ == node_kind::directory_input
           || kind_ == node_kind::queue_input;
  }

  /// Time between two batches of this node (a multiple of the batch
  /// interval): inputs have the batch interval, windows their slide, the
  /// rest their parents'. Set when the node joins the graph.
  time_ms slide() const noexcept {
    return slide_;
  }

  /// True if the node has a batch at time `t`.
  bool due(time_ms t) const noexcept {
    return slide_ > 0 && t % slide_ == 0;
  }

  /// Persisted nodes are computed once per batch and kept in the
  /// BlockManagers (windows read them over several batches).
  bool persisted() const noexcept {
    return persisted_;
  }

  void persist() noexcept {
    persisted_ = true;
  }

  /// How a persisted node's partitions are kept (default MEMORY_ONLY_SER,
  /// Spark Streaming's default for persist()); cache tasks carry it to the
  /// workers.
  const storage_level& level() const noexcept {
    return level_;
  }

  void set_level(storage_level x) noexcept {
    level_ = x;
  }

  /// Copies kept of each persisted partition (1 or 2: a second copy on
  /// another node is a hot standby that tasks read when the first is lost).
  uint32_t replication() const noexcept {
    return level_.replication;
  }

  /// How long a persisted node's partitions must stay after their batch
  /// (the longest window over it). 0: dropped with the batch.
  time_ms retention() const noexcept {
    return retention_;
  }

  void retain_for(time_ms d) noexcept {
    retention_ = std::max(retention_, d);
  }

  /// Computes partition `p` for a cache task: encoded as a block at a
  /// serialized level, kept as typed records at a deserialized one.
  /// Implemented by every typed node.
  virtual stored_block materialize(task_context& ctx, uint32_t p,
                                   const storage_level& level);

  /// True for nodes that read their own previous batch (update_state_by_key).
  virtual bool stateful() const noexcept {
    return false;
  }

  /// True for nodes that cannot run without a checkpoint directory.
  virtual bool requires_checkpoint() const noexcept {
    return false;
  }

  /// How often a stateful node's state is written to a data checkpoint: the
  /// interval set with dstream::checkpoint(), else the smallest multiple of
  /// the slide that is at least 10 s (Spark's default), so recovery never
  /// re-runs an unbounded lineage.
  time_ms checkpoint_interval() const noexcept {
    if (checkpoint_interval_ > 0)
      return checkpoint_interval_;
    if (slide_ <= 0)
      return 10000;
    return ((10000 + slide_ - 1) / slide_) * slide_;
  }

  void set_checkpoint_interval(time_ms d) noexcept {
    checkpoint_interval_ = d;
  }

  /// The length of a window node, 0 for others.
  virtual time_ms window_length() const noexcept {
    return 0;
  }

  /// Partitions of this node given its parents' counts. Leaves are counted by
  /// the planner from their inputs (inputs) or their configuration (shuffles).
  virtual uint32_t partitions(const partition_counts& counts) const;

  /// For union nodes: which parent serves partition `p`, and its partition
  /// (the planner and union_node::compute route through it alike).
  std::pair<uint32_t, uint32_t> union_branch(uint32_t p,
                                             const partition_counts& counts) const;

private:
  friend class graph;

  uint32_t index_ = 0;
  time_ms slide_ = 0;
  time_ms fixed_slide_ = 0;
  bool persisted_ = false;
  storage_level level_;
  time_ms retention_ = 0;
  time_ms checkpoint_interval_ = 0;
  node_kind kind_;
  std::string op_;
  std::string id_;
  std::vector<node_base*> parents_;
};

/// Computes partitions of a node of record type T inside a task.
template <class T>
class typed_node : public node_base {
public:
  using value_type = T;
  using node_base::node_base;

  /// Appends partition `p` of this node, for the task described by `ctx`.
  virtual void compute(task_context& ctx, uint32_t p, std::vector<T>& out) = 0;

  /// What children call: the partition as cached in this batch when the
  /// task was given it (a persisted node), else computed.
  void get(task_context& ctx, uint32_t p, std::vector<T>& out);

  stored_block materialize(task_context& ctx, uint32_t p,
                           const storage_level& level) override;
};

/// The map side of a shuffle node: runs at the end of its parent's stage.
class shuffle_base {
public:
  virtual ~shuffle_base();

  /// Buckets partition `p` of the shuffle's parent number `side` into the
  /// shuffle's partitions, storing one block per non-empty bucket through
  /// `ctx`. Most shuffles have one parent; cogroup has two.
  virtual void write(task_context& ctx, uint32_t side, uint32_t p) = 0;

  /// Number of reduce-side partitions.
  virtual uint32_t buckets() const = 0;
};

/// An output operation.
class output_base {
public:
  virtual ~output_base();

  /// Runs the output for partition `p` on a worker; may hand records to the
  /// driver through ctx.set_result().
  virtual void run(task_context& ctx, uint32_t p) = 0;

  /// True if the driver receives every partition's result (print,
  /// foreach_batch) and calls on_driver once all partitions are done.
  virtual bool collects() const = 0;

  /// Driver side of a collecting output: results in partition order.
  virtual void on_driver(time_ms batch_time, std::vector<buffer>& results) = 0;
};

/// The DStream graph of one application.
///
/// Owner: the streaming_context. Built on one thread before start(), then
/// read-only (see node_base).
class graph {
public:
  graph();
  ~graph();

  graph(const graph&) = delete;
  graph& operator=(const graph&) = delete;

  /// Takes ownership of a node and assigns its index and default id.
  template <class Node>
  Node* add(std::unique_ptr<Node> x) {
    auto* result = x.get();
    adopt(std::move(x));
    return result;
  }

  /// Renames a node (explicit operator id); refused after start or if taken.
  caf::error rename(node_base* x, std::string id);

  size_t size() const noexcept {
    return nodes_.size();
  }

  node_base* at(uint32_t index) const;

  /// The node whose id is `id`, or nullptr (checkpoints name nodes by id).
  node_base* find(const std::string& id) const;

  const std::vector<std::unique_ptr<node_base>>& nodes() const noexcept {
    return nodes_;
  }

  std::vector<node_base*> outputs() const;
  std::vector<node_base*> inputs() const;

  /// Identifies the graph's shape (ids, operators, kinds, edges): workers
  /// with a different fingerprint built another application and are refused.
  uint64_t fingerprint() const;

  /// No more nodes or renames after this.
  void freeze() noexcept {
    frozen_ = true;
  }

  bool frozen() const noexcept {
    return frozen_;
  }

  /// Checks that the graph can run: at least one output, known parents.
  caf::error validate() const;

  /// The batch interval: the slide of input nodes. Set before nodes are
  /// added (the streaming_context does).
  void set_batch_interval(time_ms x) noexcept {
    batch_interval_ = x;
  }

  time_ms batch_interval() const noexcept {
    return batch_interval_;
  }

  /// Persisted nodes, in index (topological) order.
  std::vector<node_base*> persisted() const;

private:
  void adopt(std::unique_ptr<node_base> x);

public:
  /// Fixes a node's slide before it joins the graph (window nodes).
  static void set_fixed_slide(node_base* x, time_ms slide) noexcept {
    x->fixed_slide_ = slide;
  }

private:

  std::vector<std::unique_ptr<node_base>> nodes_;
  bool frozen_ = false;
  time_ms batch_interval_ = 1000;
};

} // namespace sluice
