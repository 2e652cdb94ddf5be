#include "runtime/exec/planner.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <stdexcept>

namespace sluice {

void cache_registry::begin(uint32_t node, time_ms t, uint32_t partitions) {
  entries_[{node, t}].resize(partitions);
  first_.emplace(node, t);
}

time_ms cache_registry::first(uint32_t node) const {
  auto i = first_.find(node);
  return i == first_.end() ? -1 : i->second;
}

std::vector<std::pair<time_ms, uint32_t>>
cache_registry::unreadable(uint32_t node,
                           const std::function<bool(const std::string&)>& live) const {
  auto complete = [](const std::vector<block_ref>& slots) {
    return std::all_of(slots.begin(), slots.end(),
                       [](const block_ref& r) { return !r.id.empty(); });
  };
  auto begin = entries_.lower_bound({node, std::numeric_limits<time_ms>::min()});
  auto end = entries_.lower_bound({node + 1, std::numeric_limits<time_ms>::min()});
  // From the newest complete entry on: entries before it are read by nobody.
  auto from = begin;
  for (auto i = begin; i != end; ++i)
    if (complete(i->second))
      from = i;
  std::vector<std::pair<time_ms, uint32_t>> result;
  for (auto i = from; i != end; ++i)
    for (uint32_t p = 0; p < i->second.size(); ++p) {
      auto& ref = i->second[p];
      if (!ref.id.empty()
          && std::none_of(ref.locations.begin(), ref.locations.end(), live))
        result.emplace_back(i->first.second, p);
    }
  return result;
}

void cache_registry::set(uint32_t node, time_ms t, uint32_t p, block_ref ref) {
  auto& slots = entries_[{node, t}];
  if (p >= slots.size())
    slots.resize(p + 1);
  slots[p] = std::move(ref);
}

const std::vector<block_ref>* cache_registry::at(uint32_t node,
                                                 time_ms t) const {
  auto i = entries_.find({node, t});
  return i == entries_.end() ? nullptr : &i->second;
}

std::vector<block_ref> cache_registry::expire(uint32_t node, time_ms upto) {
  std::vector<block_ref> result;
  auto i = entries_.lower_bound({node, std::numeric_limits<time_ms>::min()});
  while (i != entries_.end() && i->first.first == node
         && i->first.second <= upto) {
    for (auto& ref : i->second)
      if (!ref.id.empty())
        result.push_back(std::move(ref));
    i = entries_.erase(i);
  }
  return result;
}

std::vector<const block_ref*> window_sources(const node_base& window,
                                             const cache_registry& cache,
                                             time_ms t) {
  std::vector<const block_ref*> result;
  auto* parent = window.parents().front();
  auto step = parent->slide();
  auto length = window.window_length();
  if (step <= 0)
    return result;
  for (auto u = t - length + step; u <= t; u += step) {
    if (auto* parts = cache.at(parent->index(), u))
      for (auto& ref : *parts)
        // A slot stays empty when its cache job failed: that batch's
        // partition is missing from the window (its job reported the error).
        if (!ref.id.empty())
          result.push_back(&ref);
  }
  return result;
}

partition_counts count_partitions(const graph& g, const batch_inputs& inputs,
                                  const cache_registry& cache, time_ms t) {
  partition_counts counts;
  // Node indexes are a topological order: parents are always created first.
  for (auto& n : g.nodes()) {
    auto k = n->kind();
    if (k == node_kind::window && n->stateful()) {
      // Incremental windows keep their parent's hash partitioning.
      counts.set(n->index(), counts.at(n->parents().front()->index()));
    } else if (k == node_kind::window) {
      counts.set(n->index(),
                 static_cast<uint32_t>(window_sources(*n, cache, t).size()));
    } else if (n->is_input()) {
      auto i = inputs.find(n->index());
      counts.set(n->index(), i == inputs.end()
                               ? 0u
                               : static_cast<uint32_t>(i->second.size()));
    } else {
      counts.set(n->index(), n->partitions(counts));
    }
  }
  return counts;
}

namespace {

std::vector<stage_plan> plan_stages(const node_base& out, task_action action) {
  std::vector<stage_plan> stages;
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> stage_of_shuffle;
  // Returns the stages the stage computing `n` must wait for.
  std::function<std::vector<uint32_t>(const node_base*)> deps;
  std::function<uint32_t(const node_base*, uint32_t)> shuffle_stage;
  deps = [&](const node_base* n) {
    std::vector<uint32_t> result;
    std::function<void(const node_base*)> walk = [&](const node_base* x) {
      if (x->kind() == node_kind::window)
        return; // reads cached partitions, computed by earlier cache jobs
      if (x->kind() == node_kind::shuffle) {
        for (uint32_t side = 0; side < x->parents().size(); ++side) {
          auto s = shuffle_stage(x, side);
          if (std::find(result.begin(), result.end(), s) == result.end())
            result.push_back(s);
        }
        return;
      }
      for (auto* p : x->parents())
        walk(p);
    };
    walk(n);
    return result;
  };
  shuffle_stage = [&](const node_base* s, uint32_t side) {
    auto key = std::make_pair(s->index(), side);
    auto i = stage_of_shuffle.find(key);
    if (i != stage_of_shuffle.end())
      return i->second;
    auto* parent = s->parents()[side];
    stage_plan st;
    st.final_node = parent->index();
    st.action = task_action::shuffle_write;
    st.target = s->index();
    st.side = side;
    st.parents = deps(parent);
    st.id = static_cast<uint32_t>(stages.size());
    stages.push_back(st);
    stage_of_shuffle.emplace(key, st.id);
    return st.id;
  };
  stage_plan last;
  last.final_node = out.index();
  last.action = action;
  last.target = out.index();
  last.parents = deps(&out);
  last.id = static_cast<uint32_t>(stages.size());
  stages.push_back(last);
  return stages;
}

} // namespace

std::vector<stage_plan> plan_job(const graph&, const node_base& out) {
  return plan_stages(out, task_action::output);
}

std::vector<stage_plan> plan_cache_job(const graph&, const node_base& n) {
  return plan_stages(n, task_action::cache);
}

void map_output_registry::add(uint32_t shuffle, uint32_t side,
                              uint32_t map_partition,
                              const std::vector<shuffle_output>& outputs,
                              const std::string& node) {
  outputs_[{shuffle, side}][map_partition] = map_output{node, outputs};
}

std::vector<uint32_t> map_output_registry::remove_node(const std::string& node) {
  std::vector<uint32_t> affected;
  for (auto& [key, maps] : outputs_) {
    bool hit = false;
    for (auto i = maps.begin(); i != maps.end();) {
      if (i->second.node == node) {
        i = maps.erase(i);
        hit = true;
      } else {
        ++i;
      }
    }
    if (hit && std::find(affected.begin(), affected.end(), key.first)
                 == affected.end())
      affected.push_back(key.first);
  }
  return affected;
}

bool map_output_registry::complete(uint32_t shuffle, uint32_t side,
                                   uint32_t maps) const {
  auto i = outputs_.find({shuffle, side});
  if (i == outputs_.end())
    return maps == 0;
  return i->second.size() >= maps;
}

std::vector<block_ref> map_output_registry::bucket(uint32_t shuffle,
                                                   uint32_t side,
                                                   uint32_t b) const {
  std::vector<block_ref> result;
  auto i = outputs_.find({shuffle, side});
  if (i == outputs_.end())
    return result;
  for (auto& [map_partition, out] : i->second) {
    for (auto& o : out.outputs) {
      if (o.bucket != b)
        continue;
      block_ref ref;
      ref.id = o.id;
      ref.records = o.records;
      ref.bytes = o.bytes;
      ref.locations.push_back(out.node);
      result.push_back(std::move(ref));
    }
  }
  return result;
}

std::vector<std::string> map_output_registry::block_ids() const {
  std::vector<std::string> result;
  for (auto& [key, maps] : outputs_)
    for (auto& [m, out] : maps)
      for (auto& o : out.outputs)
        result.push_back(o.id);
  return result;
}

namespace {

/// True once every partition of persisted node `n` in batch `t` is cached.
bool cached_in_batch(const node_base& n, const cache_registry& cache, time_ms t) {
  if (!n.persisted())
    return false;
  auto* parts = cache.at(n.index(), t);
  if (parts == nullptr)
    return false;
  return std::all_of(parts->begin(), parts->end(),
                     [](const block_ref& ref) { return !ref.id.empty(); });
}

/// Reads of partition p of an incremental window (inverse_window_node.hpp):
/// side 0 its result at t - slide, side 1 the parent's partition p of the
/// entering batches, side 2 of the leaving ones; without a previous result,
/// side 1 spans the whole window and side 2 is empty.
void plan_incremental_window(const node_base& w, uint32_t p,
                             const cache_registry& cache, time_ms t,
                             std::vector<leaf_read>& out) {
  auto* parent = w.parents().front();
  auto step = parent->slide();
  auto slide = w.slide();
  auto length = w.window_length();
  auto add = [&](uint32_t side, const block_ref& ref) {
    leaf_read r;
    r.node = w.index();
    r.partition = p;
    r.source = leaf_read::kind::block;
    r.side = side;
    r.block = ref;
    out.push_back(std::move(r));
  };
  auto add_batches = [&](uint32_t side, time_ms from, time_ms to) {
    for (auto u = from; u <= to; u += step)
      if (auto* parts = cache.at(parent->index(), u);
          parts != nullptr && p < parts->size() && !(*parts)[p].id.empty())
        add(side, (*parts)[p]);
  };
  auto* prev = cache.at(w.index(), t - slide);
  if (prev != nullptr && p < prev->size() && !(*prev)[p].id.empty()) {
    add(0, (*prev)[p]);
    add_batches(1, t - slide + step, t);
    add_batches(2, t - slide - length + step, t - length);
  } else {
    add_batches(1, t - length + step, t);
  }
}

/// node_base::route, except that a persisted node already cached in this
/// batch ends the route: its partition is read, not recomputed.
template <class F>
void route_at(const node_base& n, uint32_t p, const partition_counts& counts,
              const cache_registry& cache, time_ms t, F& f) {
  if (cached_in_batch(n, cache, t) || n.is_leaf()) {
    f(n, p);
    return;
  }
  if (n.kind() == node_kind::union_) {
    auto [branch, q] = n.union_branch(p, counts);
    route_at(*n.parents()[branch], q, counts, cache, t, f);
    return;
  }
  route_at(*n.parents().front(), p, counts, cache, t, f);
}

} // namespace

std::vector<leaf_read> plan_reads(const graph& g, const partition_counts& counts,
                                  const batch_inputs& inputs,
                                  const map_output_registry& outputs,
                                  uint32_t final_node, uint32_t p,
                                  const cache_registry& cache, time_ms t) {
  std::vector<leaf_read> result;
  auto* n = g.at(final_node);
  if (n == nullptr)
    throw std::logic_error("unknown node " + std::to_string(final_node));
  auto visit = [&](const node_base& leaf_ref, uint32_t lp) {
    auto leaf = leaf_ref.index();
    leaf_read r;
    r.node = leaf;
    r.partition = lp;
    auto* leaf_node = &leaf_ref;
    if (cached_in_batch(*leaf_node, cache, t)) {
      // A persisted node cached earlier in this batch.
      auto& parts = *cache.at(leaf, t);
      r.source = leaf_read::kind::block;
      r.side = cached_side;
      r.block = parts.at(lp);
      result.push_back(std::move(r));
      return;
    }
    if (leaf_node->kind() == node_kind::window && leaf_node->stateful()) {
      plan_incremental_window(*leaf_node, lp, cache, t, result);
      return;
    }
    if (leaf_node->kind() == node_kind::window) {
      auto sources = window_sources(*leaf_node, cache, t);
      if (lp >= sources.size())
        throw std::logic_error("no cached partition " + std::to_string(lp)
                               + " for window " + leaf_node->id());
      r.source = leaf_read::kind::block;
      r.block = *sources[lp];
      result.push_back(std::move(r));
      return;
    }
    if (leaf_node->kind() == node_kind::shuffle) {
      // One read per parent of the shuffle: a cogroup sees both sides.
      r.source = leaf_read::kind::shuffle;
      for (uint32_t side = 0; side < leaf_node->parents().size(); ++side) {
        r.side = side;
        r.shuffle = outputs.bucket(leaf, side, lp);
        result.push_back(r);
      }
      // A stateful node also reads its own state of the previous batch.
      if (leaf_node->stateful()) {
        auto before = t - leaf_node->slide();
        auto* prev = cache.at(leaf, before);
        bool have = prev != nullptr && lp < prev->size() && !(*prev)[lp].id.empty();
        // Missing state after the first batch means a batch failed: going on
        // would silently restart the state from nothing.
        auto first = cache.first(leaf);
        if (!have && first >= 0 && first <= before)
          throw std::runtime_error("the state of " + leaf_node->id() + " at "
                                   + std::to_string(before) + " ms (partition "
                                   + std::to_string(lp)
                                   + ") is missing: its batch failed, and "
                                     "the state cannot go on without it");
        if (have) {
          leaf_read s;
          s.node = leaf;
          s.partition = lp;
          s.source = leaf_read::kind::block;
          s.side = state_side;
          s.block = (*prev)[lp];
          result.push_back(std::move(s));
        }
      }
      return;
    } else {
      auto i = inputs.find(leaf);
      if (i == inputs.end() || lp >= i->second.size())
        throw std::logic_error("no input partition " + std::to_string(lp)
                               + " for node " + std::to_string(leaf));
      auto& in = i->second[lp];
      if (in.is_file) {
        r.source = leaf_read::kind::file;
        r.file = in.file;
      } else {
        r.source = leaf_read::kind::block;
        r.block = in.block;
      }
    }
    result.push_back(std::move(r));
  };
  route_at(*n, p, counts, cache, t, visit);
  return result;
}

void encode_inputs(const batch_inputs& in,
                   ::capnp::List<wire::InputPartitions>::Builder out) {
  unsigned i = 0;
  for (auto& [node, parts] : in) {
    out[i].setNode(node);
    auto list = out[i].initPartitions(static_cast<unsigned>(parts.size()));
    for (unsigned j = 0; j < parts.size(); ++j) {
      list[j].setRecords(parts[j].records);
      if (parts[j].is_file)
        list[j].setFile(parts[j].file);
      else
        encode(parts[j].block, list[j].initBlock());
    }
    ++i;
  }
}

batch_inputs decode_inputs(::capnp::List<wire::InputPartitions>::Reader in) {
  batch_inputs result;
  for (auto x : in) {
    auto& parts = result[x.getNode()];
    for (auto p : x.getPartitions()) {
      input_partition ip;
      ip.records = p.getRecords();
      if (p.isFile()) {
        ip.is_file = true;
        ip.file = p.getFile();
      } else {
        ip.block = decode(p.getBlock());
      }
      parts.push_back(std::move(ip));
    }
  }
  return result;
}

} // namespace sluice
