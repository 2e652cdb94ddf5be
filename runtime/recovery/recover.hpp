#pragma once

#include <memory>

#include <caf/expected.hpp>

#include "runtime/block_store.hpp"
#include "runtime/config.hpp"
#include "runtime/graph.hpp"
#include "runtime/recovery/recovery_plan.hpp"

namespace sluice {

/// Prepares a restarted driver's recovery from settings.checkpoint_dir
/// (docs/contracts.md, "Recovery"): loads the newest metadata checkpoint
/// that validates and can be used (logging the ones it skipped and why),
/// checks that `g` matches it, replays the driver log, and restores every stateful node's
/// data checkpoint it names into `driver_store` (block ids
/// "r/<node>/<batch>/<partition>", location "driver"). A checkpoint whose
/// data checkpoints are unreadable, or that needs batch inputs the driver
/// log lost at its tail, is skipped for an older one. Returns null when the
/// directory holds no checkpoint (a first start), and an error naming the
/// files or the mismatch otherwise: a driver never silently starts over
/// from empty state.
caf::expected<std::shared_ptr<const recovery_plan>>
load_recovery_plan(const graph& g, const run_settings& settings,
                   block_store& driver_store);

/// Why `g` cannot continue from `meta` (empty if it can).
std::string graph_mismatch(const graph& g, time_ms batch_interval,
                           const checkpoint_metadata& meta);

} // namespace sluice
