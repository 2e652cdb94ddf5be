#include "runtime/recovery/recover.hpp"

#include <map>

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

caf::expected<std::shared_ptr<const recovery_plan>>
load_recovery_plan(const graph& g, const run_settings& settings,
                   block_store& driver_store) {
  auto& dir = settings.checkpoint_dir;
  checkpoint_dir checkpoints{dir};
  auto loaded = checkpoints.load_newest();
  if (!loaded)
    return loaded.error();
  if (!*loaded)
    return std::shared_ptr<const recovery_plan>{};
  auto plan = std::make_shared<recovery_plan>();
  plan->checkpoint_file = (*loaded)->file;
  plan->meta = std::move((*loaded)->meta);
  for (auto& why : (*loaded)->skipped)
    SLUICE_WARN("recovery", "skipped checkpoint " << why);
  auto mismatch = graph_mismatch(g, settings.batch_interval.count(), plan->meta);
  if (!mismatch.empty())
    return make_error(errc::graph_mismatch,
                      "cannot recover from " + plan->checkpoint_file + ": "
                        + mismatch
                        + " (keep the ids of stateful operators with .name(), "
                          "or start with an empty checkpoint directory)");
  auto log = replay_driver_log(dir);
  if (!log)
    return log.error();
  plan->log = std::move(*log);
  for (auto& cut : plan->log.cut)
    SLUICE_WARN("recovery", "driver log: " << cut);
  for (auto& ref : plan->meta.states) {
    const node_base* node = nullptr;
    for (auto& n : g.nodes())
      if (n->id() == ref.node_id)
        node = n.get();
    if (node == nullptr)
      continue; // refused above if it mattered
    auto parts = read_state_checkpoint(ref.file, ref.node_id, ref.batch_ms);
    if (!parts)
      return make_error(errc::corrupt_data,
                        "cannot recover from " + plan->checkpoint_file
                          + ": its data checkpoint is unreadable: "
                          + describe(parts.error()));
    // State is hash-partitioned: read into another partition count, keys
    // would land in partitions that do not hold them.
    const node_base* keyed = node;
    if (node->kind() == node_kind::window && !node->parents().empty())
      keyed = node->parents().front(); // incremental windows keep its partitioning
    if (auto* sh = dynamic_cast<const shuffle_base*>(keyed);
        sh != nullptr && sh->buckets() != parts->size())
      return make_error(errc::graph_mismatch,
                        "cannot recover from " + plan->checkpoint_file + ": "
                          + ref.node_id + " has " + std::to_string(sh->buckets())
                          + " partitions, its data checkpoint " + ref.file + " has "
                          + std::to_string(parts->size())
                          + " (keep the operator's partition count and "
                            "sluice.default-parallelism)");
    restored_state rs;
    rs.node = node->index();
    rs.batch = ref.batch_ms;
    for (size_t p = 0; p < parts->size(); ++p) {
      block_ref b;
      b.id = "r/" + std::to_string(rs.node) + "/" + std::to_string(rs.batch) + "/"
             + std::to_string(p);
      b.records = (*parts)[p].records;
      b.bytes = (*parts)[p].bytes.size();
      b.locations.push_back("driver");
      driver_store.put(b.id, stored_block{(*parts)[p].bytes, b.records});
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
