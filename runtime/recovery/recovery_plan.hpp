#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.hpp"
#include "runtime/exec/task_context.hpp"
#include "runtime/graph.hpp"
#include "runtime/recovery/driver_log.hpp"

namespace sluice {

/// The earliest batch a recovery may have to re-run if the driver died now
/// (docs/contracts.md, "Recovery"): the oldest batch whose state is not in
/// a data checkpoint, moved back by the longest window so windows see whole
/// windows again.
///
/// `next` is the first batch not known complete; `state_times` holds the
/// batch of each stateful node's newest data checkpoint (absent: none yet,
/// so the state must be rebuilt from `first_batch`).
time_ms recovery_horizon(const graph& g, time_ms next, time_ms first_batch,
                         const std::map<uint32_t, time_ms>& state_times);

/// A stateful node's state as restored from its data checkpoint: the
/// partitions are put in the driver's block store under `ids`.
struct restored_state {
  uint32_t node = 0;
  time_ms batch = 0;
  std::vector<block_ref> partitions;
};

/// What a restarted driver does before it takes new batches.
///
/// Built by streaming_context::get_or_create from the newest valid metadata
/// checkpoint and the driver log; read by the ReceiverTracker (which
/// continues from the replayed received_block_tracker), the JobScheduler
/// (restored state) and the JobGenerator (which batches to re-run, with
/// their logged inputs). Immutable once built, shared read-only.
struct recovery_plan {
  std::string checkpoint_file;
  checkpoint_metadata meta;
  driver_log_state log;
  std::vector<restored_state> states;
  /// Batches recomputed for their cached and state partitions only: they
  /// completed before the crash, so their outputs are not written again.
  std::vector<time_ms> recompute;
  /// Batches generated but not known complete: re-run in full, with exactly
  /// the inputs they were given (their outputs are written again, at least
  /// once; file sinks replace the same part files).
  std::vector<time_ms> rerun;
  /// The last batch time the crashed driver generated; the batches after it
  /// that fell due while it was down are generated as usual.
  time_ms last_generated = -1;
};

/// Fills recompute, rerun and last_generated from meta and log.
void plan_batches(recovery_plan& plan);

} // namespace sluice
