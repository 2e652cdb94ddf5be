#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/block.hpp"
#include "runtime/exec/task_context.hpp"
#include "runtime/graph.hpp"
#include "runtime/hash.hpp"
#include "runtime/nodes/shuffle_nodes.hpp"

namespace sluice {

/// The skeleton of a keyed stateful node: its parent's pairs are shuffled by
/// key into `buckets` partitions (no map-side combine), and partition p of
/// batch t also reads its own partition p of batch t - slide (the state).
/// The node is persisted: each batch's partitions stay in the BlockManagers
/// until the next batch's exist, so no batch recomputes history.
template <class K, class V, class Out>
class keyed_state_node : public typed_node<Out>, public shuffle_base {
public:
  keyed_state_node(const char* op, typed_node<std::pair<K, V>>* parent,
                   uint32_t buckets)
    : typed_node<Out>(node_kind::shuffle, op, {parent}),
      parent_(parent),
      buckets_(buckets) {
    this->persist();
  }

  bool stateful() const noexcept override {
    return true;
  }

  bool requires_checkpoint() const noexcept override {
    return true;
  }

  uint32_t buckets() const override {
    return buckets_;
  }

  uint32_t partitions(const partition_counts&) const override {
    return buckets_;
  }

  void write(task_context& ctx, uint32_t, uint32_t p) override {
    detail::write_keyed(ctx, parent_, p, this->index(), buckets_);
  }

protected:
  /// Calls fn(record) for every record of type X read for `side` of p
  /// (the previous state comes typed when it was cached deserialized here).
  template <class X, class Fn>
  void each(task_context& ctx, uint32_t p, uint32_t side, Fn&& fn) {
    if (!ctx.has_blocks(this->index(), p, side))
      return;
    ctx.for_each_record<X>(this->index(), p, side, std::forward<Fn>(fn));
  }

  typed_node<std::pair<K, V>>* parent_;
  uint32_t buckets_;
};

/// update_state_by_key: per-key state carried from batch to batch. Partition
/// p of batch t is f(values of the key in t, state of the key in t - slide)
/// for every key with new values or a previous state; a key whose f returns
/// nullopt is removed.
template <class K, class V, class S, class F>
class state_node : public keyed_state_node<K, V, std::pair<K, S>> {
public:
  state_node(typed_node<std::pair<K, V>>* parent, uint32_t buckets, F f)
    : keyed_state_node<K, V, std::pair<K, S>>("update_state_by_key", parent,
                                              buckets),
      f_(std::move(f)) {
  }

  void compute(task_context& ctx, uint32_t p,
               std::vector<std::pair<K, S>>& out) override {
    std::unordered_map<K, S, key_hash<K>> previous;
    this->template each<std::pair<K, S>>(ctx, p, state_side, [&](auto&& ks) {
      previous.emplace(std::move(ks.first), std::move(ks.second));
    });
    std::unordered_map<K, std::vector<V>, key_hash<K>> values;
    this->template each<std::pair<K, V>>(ctx, p, 0, [&](auto&& kv) {
      values[std::move(kv.first)].push_back(std::move(kv.second));
    });
    for (auto& [k, vs] : values) {
      std::optional<S> state;
      if (auto i = previous.find(k); i != previous.end()) {
        state = std::move(i->second);
        previous.erase(i);
      }
      if (auto next = f_(vs, std::move(state)))
        out.emplace_back(k, std::move(*next));
    }
    const std::vector<V> none;
    for (auto& [k, s] : previous)
      if (auto next = f_(none, std::optional<S>{std::move(s)}))
        out.emplace_back(k, std::move(*next));
  }

private:
  F f_;
};

} // namespace sluice
