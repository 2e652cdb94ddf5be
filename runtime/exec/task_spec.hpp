#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "messages/block.capnp.h"
#include "messages/task.capnp.h"
#include "runtime/exec/task_context.hpp"
#include "runtime/graph.hpp"
#include "runtime/storage_level.hpp"

namespace sluice {

/// One input of a task: a leaf partition and where its data is.
struct leaf_read {
  enum class kind : uint8_t { block, file, shuffle };
  uint32_t node = 0;
  uint32_t partition = 0;
  kind source = kind::block;
  block_ref block;                  ///< kind::block
  std::string file;                 ///< kind::file
  std::vector<block_ref> shuffle;   ///< kind::shuffle: one per map task
  uint32_t side = 0;                ///< kind::shuffle: which parent wrote it
};

/// What a task does with its final node's partition.
enum class task_action : uint8_t { shuffle_write, output, cache };

/// The native form of wire::LaunchTask.
struct task_spec {
  time_ms batch_time = 0;
  uint64_t job = 0;
  uint32_t stage = 0;
  uint32_t partition = 0;
  uint32_t attempt = 0;
  uint32_t final_node = 0;
  task_action action = task_action::output;
  uint32_t target = 0; ///< the shuffle node or the output node
  uint32_t shuffle_side = 0; ///< shuffle writes: which parent of the target
  std::string replica_node;  ///< cache writes: a second BlockManager, or empty
  storage_level level;       ///< cache writes: how the partition is kept
  partition_counts counts;
  std::vector<leaf_read> reads;
  /// node id -> index of its BlockManager in the envelope's capabilities
  std::vector<std::pair<std::string, uint32_t>> peers;

  /// "task <job>.<stage>.<partition> (batch <t>, attempt <a>)" for messages.
  std::string describe() const;
};

void encode(const block_ref& x, wire::BlockRef::Builder out);
block_ref decode(wire::BlockRef::Reader in);

void encode(const storage_level& x, wire::StorageLevel::Builder out);

/// Throws std::invalid_argument on a replication other than 1 or 2.
storage_level decode(wire::StorageLevel::Reader in);

void encode(const task_spec& x, wire::LaunchTask::Builder out);

/// Reads a task; throws (kj::Exception, std::exception) on malformed input,
/// which the caller's read_msg turns into an error.
task_spec decode(wire::LaunchTask::Reader in);

} // namespace sluice
