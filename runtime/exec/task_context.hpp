#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "runtime/block_store.hpp"
#include "runtime/buffer.hpp"
#include "runtime/clock.hpp"
#include "runtime/graph.hpp"

namespace sluice {

/// Where a block can be read: its id and the nodes holding it, preferred first.
/// Where a receiver WAL holds a copy of a block (wal::handle plus its log
/// directory); `segment` is empty when there is no WAL copy.
struct wal_ref {
  std::string dir;
  std::string segment;
  uint64_t offset = 0;
  uint32_t length = 0;
};

struct block_ref {
  std::string id;
  uint64_t records = 0;
  uint64_t bytes = 0;
  std::vector<std::string> locations;
  wal_ref wal; ///< the last resort of a read, after every location
};

/// Names a shuffle block: batch time, shuffle node, side (which parent of the
/// shuffle node wrote it), map partition, bucket.
/// Ids of one batch share the prefix shuffle_prefix(t), which is how a
/// finished batch's shuffle output is dropped everywhere at once.
std::string shuffle_block_id(time_ms t, uint32_t node, uint32_t side,
                             uint32_t map_partition, uint32_t bucket);
std::string shuffle_prefix(time_ms t);

/// Names partition `p` of persisted node `node` in batch `t`.
std::string cached_block_id(uint32_t node, time_ms t, uint32_t p);

/// A block written by a shuffle map task.
struct shuffle_output {
  uint32_t bucket = 0;
  std::string id;
  uint64_t records = 0;
  uint64_t bytes = 0;
  std::string replica; ///< a second node holding the block (cache writes)
};

/// Identifies one output partition of one batch: (batch time, output
/// operation, partition). A sink that records it with its data can skip a
/// partition it already committed, which makes re-runs exactly-once.
struct output_partition {
  time_ms batch_time = 0;
  std::string output_id;
  uint32_t partition = 0;
  uint32_t partitions = 0;
  uint32_t attempt = 0;
};

/// Everything a task's computation sees: its batch, the partition counts of
/// the graph in that batch, its fetched inputs, and where its outputs go.
///
/// Lifetime: one task attempt. Concurrency: used by one thread (the task
/// runner's); the block store it writes to is thread-safe.
class task_context {
public:
  task_context(time_ms batch_time, uint32_t partition, uint32_t attempt,
               partition_counts counts, std::string node,
               std::shared_ptr<block_store> store);

  time_ms batch_time() const noexcept {
    return batch_time_;
  }

  /// The partition of the task's final node.
  uint32_t partition() const noexcept {
    return partition_;
  }

  uint32_t attempt() const noexcept {
    return attempt_;
  }

  const partition_counts& counts() const noexcept {
    return counts_;
  }

  const std::string& node() const noexcept {
    return node_;
  }

  // -- inputs ---------------------------------------------------------------

  /// `side` tells the parents of a multi-parent shuffle (cogroup) apart.
  void add_blocks(uint32_t leaf, uint32_t p, std::vector<buffer> blocks,
                  uint32_t side = 0);
  void add_file(uint32_t leaf, uint32_t p, std::string path);

  /// The fetched blocks of a leaf partition; throws std::logic_error if the
  /// task was not given that leaf partition (a planner bug, not bad input).
  const std::vector<buffer>& blocks(uint32_t leaf, uint32_t p,
                                    uint32_t side = 0) const;
  const std::string& file(uint32_t leaf, uint32_t p) const;

  bool has_blocks(uint32_t leaf, uint32_t p, uint32_t side = 0) const {
    return blocks_.count({leaf, p, side}) > 0;
  }

  /// Counts records read from input leaves (for the batch's record count).
  void count_input(uint64_t n) noexcept {
    input_records_ += n;
  }

  uint64_t input_records() const noexcept {
    return input_records_;
  }

  // -- outputs --------------------------------------------------------------

  /// Stores one bucket of a shuffle map task (writing for `side` of the
  /// shuffle node) in the local block store.
  void put_shuffle_block(uint32_t shuffle_node, uint32_t side, uint32_t bucket,
                         buffer bytes, uint64_t records);

  const std::vector<shuffle_output>& shuffle_outputs() const noexcept {
    return shuffle_outputs_;
  }

  std::vector<shuffle_output>& shuffle_outputs() noexcept {
    return shuffle_outputs_;
  }

  /// The local block store (where this task's outputs are).
  block_store& store() {
    return *store_;
  }

  /// Stores partition `p` of a persisted node in the local block store; it
  /// is reported like a shuffle output (bucket = partition).
  void put_cached_block(uint32_t node, uint32_t p, buffer bytes,
                        uint64_t records);

  /// Records handed to the driver by a collecting output.
  void set_result(buffer bytes) {
    result_ = std::move(bytes);
  }

  const buffer& result() const noexcept {
    return result_;
  }

private:
  time_ms batch_time_;
  uint32_t partition_;
  uint32_t attempt_;
  partition_counts counts_;
  std::string node_;
  std::shared_ptr<block_store> store_;
  std::map<std::tuple<uint32_t, uint32_t, uint32_t>, std::vector<buffer>> blocks_;
  std::map<std::pair<uint32_t, uint32_t>, std::string> files_;
  uint64_t input_records_ = 0;
  std::vector<shuffle_output> shuffle_outputs_;
  buffer result_;
};

// -- typed_node members that need a complete task_context ---------------------

template <class T>
void typed_node<T>::get(task_context& ctx, uint32_t p, std::vector<T>& out) {
  if (ctx.has_blocks(this->index(), p, cached_side)) {
    for (auto& bytes : ctx.blocks(this->index(), p, cached_side))
      block_reader{bytes}.decode_into(out);
    return;
  }
  compute(ctx, p, out);
}

template <class T>
buffer typed_node<T>::materialize(task_context& ctx, uint32_t p) {
  std::vector<T> xs;
  compute(ctx, p, xs);
  return make_block(xs);
}

} // namespace sluice
