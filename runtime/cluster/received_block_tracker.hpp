#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/exec/planner.hpp"

namespace sluice {

/// Where the received-block tracker writes its records before it applies
/// them: the driver log (runtime/recovery/driver_log), or a test's fake.
/// Each call returns once the record is durable, or an error; a record
/// whose write failed is not in the log (the WAL truncates it away or
/// abandons its segment, docs/wal_format.md).
class block_tracker_log {
public:
  virtual ~block_tracker_log();

  virtual caf::error block_added(time_ms now, uint32_t stream,
                                 const block_ref& ref) = 0;

  /// `inputs` are the batch's complete inputs: its received blocks and the
  /// driver's own (files of directory streams, queued data), one record.
  virtual caf::error batch_allocated(time_ms now, time_ms batch,
                                     const batch_inputs& inputs) = 0;

  virtual caf::error batch_cleaned(time_ms now, time_ms batch) = 0;
};

/// The driver's received blocks, from their AddBlock to the release of the
/// batch that took them: blocks added but not allocated (per stream, in
/// arrival order), the inputs of each allocated batch, the ids of every
/// block above (an AddBlock re-sent after a driver restart is acknowledged
/// without being counted twice), and where each block's copies are.
///
/// Every change that must survive the driver goes through LogAndApply, as
/// leveldb's VersionSet does: the record is written to the log first, then
/// applied to memory by the same code that applies it at a replay
/// (`replay_*`). A change whose record could not be written is refused with
/// the log's error and applies nothing, so memory never holds what a
/// restarted driver would not find. Copies made later (re-replication) and
/// lost are not logged: a restarted driver knows the locations each
/// block's receiver reported, and a task skips a copy that is gone.
///
/// Which inputs of a batch are received blocks: those of the streams it
/// was told of (`add_stream`, or a block added for the stream). The other
/// inputs of an allocation (files, queued data) are logged with the batch
/// and kept in `allocations()`, but never located, dropped or copied here.
///
/// Times are passed in (the log stamps records with them); there is no
/// clock and no actor system. Lifetime: a value owned by the driver's
/// ReceiverTracker (the live path) or built by the driver log's replay
/// (the recovery path), which the tracker continues from. Concurrency: not
/// thread-safe; its owner uses it alone.
class received_block_tracker {
public:
  /// Block ids to drop, per node holding a copy.
  using drops = std::map<std::string, std::vector<std::string>>;

  /// A tracked block, and the batch it is allocated to (none while
  /// unallocated). `ref` stays valid until the next change of the tracker.
  struct located_block {
    const block_ref* ref = nullptr;
    std::optional<time_ms> batch;
    bool added = false; ///< add_locations: a location was new
  };

  /// Writes to `log`; a null log records nothing (no checkpoint directory),
  /// and every change applies at once.
  explicit received_block_tracker(std::shared_ptr<block_tracker_log> log = nullptr);

  /// Continues from `replayed` (the state the driver log's replay built),
  /// writing to `log` from now on.
  received_block_tracker(std::shared_ptr<block_tracker_log> log,
                         const received_block_tracker& replayed);

  // -- the live path: log, then apply ----------------------------------------

  /// Says that `stream` is a receiver stream: its inputs are received
  /// blocks (replayed allocations name streams that no replayed block
  /// added, once their records were cleaned up).
  void add_stream(uint32_t stream);

  /// A receiver reported block `ref` of `stream`. True if it is new (logged
  /// and now unallocated), false if it was known already (nothing logged:
  /// its receiver re-sent it after a driver restart).
  caf::expected<bool> add(time_ms now, uint32_t stream, block_ref ref);

  /// Gives batch `batch` every unallocated block of every stream; `others`
  /// are its other inputs (files, queued data), logged in the same record.
  /// Returns the received blocks taken, per stream (a stream that ever had
  /// a block is listed, possibly empty). Refused for a batch allocated
  /// already, or when `others` names a receiver stream.
  caf::expected<std::map<uint32_t, std::vector<block_ref>>>
  allocate(time_ms now, time_ms batch, batch_inputs others);

  /// Batch `batch` will never run again: forgets its inputs and returns
  /// where its received blocks are to be dropped. A batch without an
  /// allocation releases nothing and logs nothing.
  caf::expected<drops> release(time_ms now, time_ms batch);

  // -- the recovery path: apply a record read back from the log --------------

  void replay_added(uint32_t stream, block_ref ref);

  void replay_allocated(time_ms batch, batch_inputs inputs);

  void replay_cleaned(time_ms batch);

  // -- locations (not logged) ------------------------------------------------

  /// Forgets every copy on `node` (a lost worker: its id never returns).
  /// Returns the ids of the blocks that lost their last copy with it.
  std::vector<std::string> forget_node(const std::string& node);

  /// Block `id` has copies on `nodes` (re-replication made one, or a
  /// re-sent AddBlock names them); the ones it lacks are added. Errors
  /// with not_found when the block is no longer tracked (its batch was
  /// released meanwhile).
  caf::expected<located_block> add_locations(const std::string& id,
                                             const std::vector<std::string>& nodes);

  /// The tracked block `id`, if any.
  std::optional<located_block> find(const std::string& id) const;

  /// Every tracked received block, unallocated ones first, then by batch.
  std::vector<const block_ref*> blocks() const;

  // -- observers -------------------------------------------------------------

  const std::map<uint32_t, std::vector<block_ref>>& unallocated() const noexcept {
    return unallocated_;
  }

  /// The complete inputs of every allocated batch not released, as logged.
  const std::map<time_ms, batch_inputs>& allocations() const noexcept {
    return allocations_;
  }

  /// Ids of every block unallocated or allocated to a batch not released.
  const std::set<std::string>& known() const noexcept {
    return known_;
  }

  const std::set<uint32_t>& streams() const noexcept {
    return streams_;
  }

private:
  void apply_added(uint32_t stream, block_ref ref);

  void apply_allocated(time_ms batch, batch_inputs inputs);

  void apply_cleaned(time_ms batch);

  /// Calls `f(ref, batch)` for every tracked received block of `self` until
  /// it returns true (one walk for the const and the mutable callers).
  template <class Self, class F>
  static void for_each_block(Self& self, F f);

  std::shared_ptr<block_tracker_log> log_;
  std::set<uint32_t> streams_;
  std::map<uint32_t, std::vector<block_ref>> unallocated_;
  std::map<time_ms, batch_inputs> allocations_;
  std::set<std::string> known_;
};

} // namespace sluice
