#include "runtime/recovery/recover.hpp"

#include <map>
#include <optional>
#include <vector>

#include "runtime/log.hpp"

namespace sluice {

std::string graph_mismatch(const graph& g, time_ms batch_interval,
                           const checkpoint_metadata& meta) {
  if (meta.batch_interval_ms != batch_interval)
    return "the checkpoint was written with a batch interval of "
           + std::to_string(meta.batch_interval_ms) + " ms, this application has "
           + std::to_string(batch_interval) + " ms";
  std::map<std::string, const checkpoint_operator*> saved;
  for (auto& op : meta.operators)
    if (op.stateful)
      saved.emplace(op.id, &op);
  std::string problems;
  auto add = [&](const std::string& text) {
    problems += (problems.empty() ? "" : "; ") + text;
  };
  for (auto& n : g.nodes()) {
    if (!n->stateful())
      continue;
    auto i = saved.find(n->id());
    if (i == saved.end()) {
      add("stateful operator " + n->id() + " (" + n->op()
          + ") is not in the checkpoint");
      continue;
    }
    if (i->second->slide_ms != n->slide())
      add("stateful operator " + n->id() + " slides every "
          + std::to_string(n->slide()) + " ms, the checkpoint says "
          + std::to_string(i->second->slide_ms) + " ms");
    saved.erase(i);
  }
  for (auto& [id, op] : saved)
    add("the checkpoint holds state of operator " + id + " (" + op->op
        + "), which this application does not have");
  return problems;
}

namespace {

/// The batches whose inputs a recovery from `meta` needs but the driver log
/// does not hold, as a reason to pass over `meta` (empty if none). Only the
/// log's tail can go missing without failing the replay: a cut torn tail,
/// or a damaged last record, which cannot be told from one
/// (docs/wal_format.md). Under fsync the record being appended at a crash
/// was never acknowledged, so no checkpoint depends on it; a damaged
/// acknowledged record does, and recovering from such a checkpoint would
/// skip the batch (its files already count as taken), silently losing its
/// input. So: every pending batch is re-run from the log, and the last
/// completed one is recomputed from it when at or past the horizon (the
/// newest batches a checkpoint needs; older ones precede them in the log).
std::string missing_inputs(const checkpoint_metadata& meta,
                           const driver_log_state& log) {
  auto& allocations = log.tracker.allocations();
  std::vector<time_ms> missing;
  for (auto t : meta.pending_ms)
    if (allocations.count(t) == 0)
      missing.push_back(t);
  auto last = meta.last_completed_ms;
  if (last >= 0 && meta.recovery_horizon_ms >= 0
      && last >= meta.recovery_horizon_ms && allocations.count(last) == 0)
    missing.push_back(last);
  if (missing.empty())
    return {};
  std::string what = "needs the inputs of batch";
  for (size_t i = 0; i < missing.size(); ++i)
    what += (i > 0 ? ", " : " ") + std::to_string(missing[i]) + " ms";
  what += ", which the driver log does not hold";
  if (!log.cut.empty())
    what += " (its tail was cut)";
  return what;
}

/// A stateful node's state as read from its data checkpoint.
struct read_state {
  const node_base* node = nullptr;
  time_ms batch = 0;
  std::vector<state_partition> parts;
};

} // namespace

caf::expected<std::shared_ptr<const recovery_plan>>
load_recovery_plan(const graph& g, const run_settings& settings,
                   block_store& driver_store) {
  auto& dir = settings.checkpoint_dir;
  checkpoint_dir checkpoints{dir};
  std::string mismatch;
  std::optional<driver_log_state> log;
  caf::error log_error;
  std::vector<read_state> states;
  // Decides, newest checkpoint first, whether a recovery can start from it.
  // A checkpoint whose data checkpoints are unreadable, or that needs
  // inputs the log lost, is passed over for an older one (kept with its
  // inputs for exactly this, docs/recovery.md) rather than refused: the
  // older one recovers the same result, only from further back.
  auto usable = [&](const checkpoint_metadata& meta, const std::string&) -> std::string {
    // The application must match the newest valid checkpoint: an older one
    // would not make a different application fit. Accepted here, refused
    // below with the difference spelled out.
    mismatch = graph_mismatch(g, settings.batch_interval.count(), meta);
    if (!mismatch.empty())
      return {};
    if (!log && !log_error) {
      auto replayed = replay_driver_log(dir);
      if (replayed)
        log = std::move(*replayed);
      else
        log_error = std::move(replayed.error());
    }
    if (log_error)
      return {}; // fails below: a log corrupt before its tail stops recovery
    if (auto why = missing_inputs(meta, *log); !why.empty())
      return why;
    states.clear();
    for (auto& ref : meta.states) {
      const node_base* node = g.find(ref.node_id);
      if (node == nullptr)
        continue; // refused by graph_mismatch if it mattered
      auto parts = read_state_checkpoint(ref.file, ref.node_id, ref.batch_ms);
      if (!parts)
        return "its data checkpoint is unreadable: " + describe(parts.error());
      // State is hash-partitioned: read into another partition count, keys
      // would land in partitions that do not hold them. Like a graph
      // mismatch, an older checkpoint would not fit either: refused below.
      const node_base* keyed = node;
      if (node->kind() == node_kind::window && !node->parents().empty())
        keyed = node->parents().front(); // incremental windows keep its partitioning
      if (auto* sh = dynamic_cast<const shuffle_base*>(keyed);
          sh != nullptr && sh->buckets() != parts->size()) {
        mismatch = ref.node_id + " has " + std::to_string(sh->buckets())
                   + " partitions, its data checkpoint " + ref.file + " has "
                   + std::to_string(parts->size())
                   + " (keep the operator's partition count and "
                     "sluice.default-parallelism)";
        return {};
      }
      states.push_back(read_state{node, ref.batch_ms, std::move(*parts)});
    }
    return {};
  };
  auto loaded = checkpoints.load_newest(usable);
  if (!loaded)
    return loaded.error();
  if (!*loaded)
    return std::shared_ptr<const recovery_plan>{};
  auto plan = std::make_shared<recovery_plan>();
  plan->checkpoint_file = (*loaded)->file;
  plan->meta = std::move((*loaded)->meta);
  for (auto& why : (*loaded)->skipped)
    SLUICE_WARN("recovery", "skipped checkpoint " << why);
  if (!mismatch.empty())
    return make_error(errc::graph_mismatch,
                      "cannot recover from " + plan->checkpoint_file + ": "
                        + mismatch
                        + " (keep the ids of stateful operators with .name(), "
                          "or start with an empty checkpoint directory)");
  if (log_error)
    return log_error;
  plan->log = std::move(*log);
  for (auto& cut : plan->log.cut)
    SLUICE_WARN("recovery", "driver log: " << cut);
  for (auto& state : states) {
    restored_state rs;
    rs.node = state.node->index();
    rs.batch = state.batch;
    for (size_t p = 0; p < state.parts.size(); ++p) {
      block_ref b;
      b.id = "r/" + std::to_string(rs.node) + "/" + std::to_string(rs.batch) + "/"
             + std::to_string(p);
      b.records = state.parts[p].records;
      b.bytes = state.parts[p].bytes.size();
      b.locations.push_back("driver");
      driver_store.put(b.id, stored_block{state.parts[p].bytes, b.records});
      rs.partitions.push_back(std::move(b));
    }
    plan->states.push_back(std::move(rs));
  }
  plan_batches(*plan);
  SLUICE_INFO("recovery", "recovering from " << plan->checkpoint_file
                                             << " (last completed batch "
                                             << plan->meta.last_completed_ms
                                             << " ms, " << plan->log.records
                                             << " driver log records)");
  return std::shared_ptr<const recovery_plan>{std::move(plan)};
}

} // namespace sluice
