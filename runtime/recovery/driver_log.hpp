#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/cluster/received_block_tracker.hpp"
#include "runtime/exec/planner.hpp"
#include "runtime/wal/wal.hpp"

namespace sluice {

/// The driver log as replayed: the received-block tracker's state, rebuilt
/// by applying each record with the code that applied it when it was
/// written (received_block_tracker::replay_*).
struct driver_log_state {
  /// Blocks added but not allocated, the complete inputs of every batch
  /// allocated and not cleaned, and the ids of every block in them.
  received_block_tracker tracker;
  size_t records = 0;            ///< log records replayed
  std::vector<std::string> cut;  ///< torn tails the replay cut off
};

/// The driver WAL: block additions, batch allocations and cleanups, each
/// logged (and durable under the fsync policy) before it takes effect.
///
/// Lives in <checkpoint dir>/driver-wal (format: docs/wal_format.md; record
/// schema: messages/driver_log.capnp). Owner: the driver's streaming_context
/// opens it and shares it with the ReceiverTracker, whose
/// received_block_tracker writes every record, and the JobGenerator, which
/// deletes old segments. Concurrency: thread-safe (one mutex): the two
/// actors use it from their own threads. Lifetime: until the last of them
/// drops it.
class driver_log : public block_tracker_log {
public:
  static std::string dir_of(const std::string& checkpoint_dir);

  static caf::expected<std::shared_ptr<driver_log>>
  open(const std::string& checkpoint_dir, time_ms rolling_interval);

  caf::error block_added(time_ms now, uint32_t stream,
                         const block_ref& ref) override;

  caf::error batch_allocated(time_ms now, time_ms batch,
                             const batch_inputs& inputs) override;

  caf::error batch_cleaned(time_ms now, time_ms batch) override;

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
