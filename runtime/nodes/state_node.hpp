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

/// update_state_by_key: per-key state carried from batch to batch.
///
/// The new values are shuffled into `buckets` partitions by key; partition p
/// of batch t is f(values of the key in t, state of the key in t - slide)
/// for every key with new values or a previous state, and a key whose f
/// returns nullopt is removed. The node is persisted: each batch's state
/// partitions stay in the BlockManagers until the next batch's exist, and a
/// batch reads the previous batch's state instead of recomputing history.
template <class K, class V, class S, class F>
class state_node : public typed_node<std::pair<K, S>>, public shuffle_base {
public:
  state_node(typed_node<std::pair<K, V>>* parent, uint32_t buckets, F f)
    : typed_node<std::pair<K, S>>(node_kind::shuffle, "update_state_by_key",
                                  {parent}),
      parent_(parent),
      buckets_(buckets),
      f_(std::move(f)) {
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
    std::vector<std::pair<K, V>> in;
    parent_->get(ctx, p, in);
    detail::bucket_writer out{buckets_};
    std::string scratch;
    for (auto& [k, v] : in)
      out[detail::encode_keyed(scratch, k, v, buckets_)].add_encoded(scratch);
    out.flush(ctx, this->index());
  }

  void compute(task_context& ctx, uint32_t p,
               std::vector<std::pair<K, S>>& out) override {
    std::unordered_map<K, S, key_hash<K>> previous;
    if (ctx.has_blocks(this->index(), p, state_side))
      for (auto& bytes : ctx.blocks(this->index(), p, state_side)) {
        block_reader reader{bytes};
        for (size_t i = 0; i < reader.size(); ++i) {
          auto ks = decode_all<std::pair<K, S>>(reader.record(i));
          previous.emplace(std::move(ks.first), std::move(ks.second));
        }
      }
    std::unordered_map<K, std::vector<V>, key_hash<K>> values;
    for (auto& bytes : ctx.blocks(this->index(), p)) {
      block_reader reader{bytes};
      for (size_t i = 0; i < reader.size(); ++i) {
        auto kv = decode_all<std::pair<K, V>>(reader.record(i));
        values[std::move(kv.first)].push_back(std::move(kv.second));
      }
    }
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
  typed_node<std::pair<K, V>>* parent_;
  uint32_t buckets_;
  F f_;
};

} // namespace sluice
