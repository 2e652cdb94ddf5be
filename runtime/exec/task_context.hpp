#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <stdexcept>
#include <tuple>
#include <typeinfo>
#include <utility>
#include <vector>

#include "runtime/block_store.hpp"
#include "runtime/buffer.hpp"
#include "runtime/clock.hpp"
#include "runtime/graph.hpp"
#include "runtime/storage_level.hpp"
#include "runtime/typed_records.hpp"

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

  /// Adds one fetched block: its typed records if it has them (a partition
  /// cached deserialized on this node), else its bytes.
  void add_block(uint32_t leaf, uint32_t p, stored_block block,
                 uint32_t side = 0);

  void add_file(uint32_t leaf, uint32_t p, std::string path);

  /// The fetched blocks of a leaf partition, encoded; throws
  /// std::logic_error if the task was not given that leaf partition (a
  /// planner bug, not bad input). Typed inputs are encoded on the first
  /// call (for readers that only know bytes); read_into and for_each_record
  /// use them as they are.
  const std::vector<buffer>& blocks(uint32_t leaf, uint32_t p,
                                    uint32_t side = 0);
  const std::string& file(uint32_t leaf, uint32_t p) const;

  bool has_blocks(uint32_t leaf, uint32_t p, uint32_t side = 0) const {
    return inputs_.count({leaf, p, side}) > 0;
  }

  /// Appends the records of a leaf partition to `out`: typed inputs are
  /// copied without decoding, encoded ones decoded. Throws like blocks(),
  /// and std::logic_error if a typed input holds records of another type.
  template <class T>
  void read_into(uint32_t leaf, uint32_t p, uint32_t side, std::vector<T>& out);

  /// Calls fn(T&&) for every record of a leaf partition (as read_into).
  template <class T, class F>
  void for_each_record(uint32_t leaf, uint32_t p, uint32_t side, F&& fn);

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

  /// Stores partition `p` of a persisted node in the local block store at
  /// `level`; it is reported like a shuffle output (bucket = partition).
  void put_cached_block(uint32_t node, uint32_t p, stored_block block,
                        storage_level level);

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
  /// A leaf partition's inputs as fetched: encoded blocks, and typed
  /// records of partitions cached deserialized on this node.
  struct input_slot {
    std::vector<buffer> bytes;
    std::vector<typed_records> typed;
  };

  input_slot& slot(uint32_t leaf, uint32_t p, uint32_t side);

  template <class T>
  static const std::vector<T>& typed_as(const typed_records& x, uint32_t leaf);

  std::map<std::tuple<uint32_t, uint32_t, uint32_t>, input_slot> inputs_;
  std::map<std::pair<uint32_t, uint32_t>, std::string> files_;
  uint64_t input_records_ = 0;
  std::vector<shuffle_output> shuffle_outputs_;
  buffer result_;
};

// -- task_context's typed reads -------------------------------------------------

template <class T>
const std::vector<T>& task_context::typed_as(const typed_records& x,
                                             uint32_t leaf) {
  auto* xs = x.template records<T>();
  if (xs == nullptr)
    throw std::logic_error("cached partition of node " + std::to_string(leaf)
                           + " holds records of type " + x.type_name()
                           + ", not " + typeid(T).name());
  return *xs;
}

template <class T>
void task_context::read_into(uint32_t leaf, uint32_t p, uint32_t side,
                             std::vector<T>& out) {
  auto& in = slot(leaf, p, side);
  for (auto& x : in.typed) {
    auto& xs = typed_as<T>(x, leaf);
    out.insert(out.end(), xs.begin(), xs.end());
  }
  for (auto& bytes : in.bytes)
    block_reader{bytes}.decode_into(out);
}

template <class T, class F>
void task_context::for_each_record(uint32_t leaf, uint32_t p, uint32_t side,
                                   F&& fn) {
  auto& in = slot(leaf, p, side);
  for (auto& x : in.typed)
    for (auto& rec : typed_as<T>(x, leaf))
      fn(T{rec});
  for (auto& bytes : in.bytes) {
    block_reader reader{bytes};
    for (size_t i = 0; i < reader.size(); ++i)
      fn(decode_all<T>(reader.record(i)));
  }
}

// -- typed_node members that need a complete task_context ---------------------

template <class T>
void typed_node<T>::get(task_context& ctx, uint32_t p, std::vector<T>& out) {
  if (ctx.has_blocks(this->index(), p, cached_side)) {
    ctx.read_into(this->index(), p, cached_side, out);
    return;
  }
  compute(ctx, p, out);
}

template <class T>
stored_block typed_node<T>::materialize(task_context& ctx, uint32_t p,
                                        const storage_level& level) {
  std::vector<T> xs;
  compute(ctx, p, xs);
  if (level.serialized)
    return stored_block{make_block(xs), xs.size()};
  return stored_block{typed_records::make(std::move(xs))};
}

} // namespace sluice
