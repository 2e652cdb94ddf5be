#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/exec/planner.hpp"
#include "runtime/wal/wal.hpp"

namespace sluice {

/// The received-block tracker's state as rebuilt from the driver log.
struct driver_log_state {
  /// Blocks reported but not given to any batch, per stream, in arrival order.
  std::map<uint32_t, std::vector<block_ref>> unallocated;
  /// The inputs of every batch allocated and not cleaned, by batch time.
  std::map<time_ms, batch_inputs> allocations;
  /// Ids of every block above (AddBlock re-sent by a receiver after a driver
  /// restart is recognised and not counted twice).
  std::set<std::string> known_blocks;
  size_t records = 0;            ///< log records replayed
  std::vector<std::string> cut;  ///< torn tails the replay cut off
};

/// The driver WAL: block additions, batch allocations and cleanups, each
/// logged (and durable under the fsync policy) before it takes effect.
///
/// Lives in <checkpoint dir>/driver-wal (format: docs/wal_format.md; record
/// schema: messages/driver_log.capnp). Owner: the driver's streaming_context
/// opens it and shares it with the ReceiverTracker (block additions) and the
/// JobGenerator (allocations, cleanups). Concurrency: thread-safe (one
/// mutex): the two actors append from their own threads. Lifetime: until
/// the last of them drops it.
class driver_log {
public:
  static std::string dir_of(const std::string& checkpoint_dir);

  static caf::expected<std::shared_ptr<driver_log>>
  open(const std::string& checkpoint_dir, time_ms rolling_interval);

  caf::error block_added(time_ms now, uint32_t stream, const block_ref& ref);

  caf::error batch_allocated(time_ms now, time_ms batch,
                             const batch_inputs& inputs);

  caf::error batch_cleaned(time_ms now, time_ms batch);

  /// Deletes log segments that end at or before `threshold`.
  caf::expected<size_t> delete_older_than(time_ms threshold);

private:
  explicit driver_log(std::unique_ptr<wal::writer> w);

  caf::error append(time_ms now, const buffer& record);

  std::mutex mtx_;
  std::unique_ptr<wal::writer> writer_;
};

/// Replays the driver log of `checkpoint_dir` (a missing log is empty).
/// Corruption before a segment's tail is an error naming file and offset:
/// recovery stops rather than run batches with inputs it cannot trust.
caf::expected<driver_log_state> replay_driver_log(const std::string& checkpoint_dir);

} // namespace sluice
