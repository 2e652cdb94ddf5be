#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/block.hpp"
#include "runtime/exec/task_context.hpp"
#include "runtime/graph.hpp"
#include "runtime/hash.hpp"

namespace sluice {

/// Sides of an incremental window's reads (see inverse_window_node).
enum inverse_window_side : uint32_t {
  previous_window = 0, ///< this node's own result at t - slide
  entering = 1,        ///< parent batches in (t - slide, t]
  leaving = 2,         ///< parent batches in (t - slide - length, t - length]
};

/// reduce_by_key_and_window with an inverse function: the window at t is
/// the window at t - slide, plus the batches entering (f), minus the batches
/// leaving (inverse). The parent is the per-batch reduce_by_key, persisted
/// and hash-partitioned like this node, so partition p of every batch holds
/// exactly the keys of partition p here: no shuffle is needed. Without a
/// previous window (the first ones, or one that was lost) partition p is
/// recomputed from all batches of its window. As in Spark, a key whose value
/// returns to the neutral value stays unless a filter drops it.
template <class K, class V, class F, class Inv>
class inverse_window_node : public typed_node<std::pair<K, V>> {
public:
  using filter_fn = std::function<bool(const std::pair<K, V>&)>;

  inverse_window_node(typed_node<std::pair<K, V>>* parent, time_ms length,
                      time_ms slide, F f, Inv inv, filter_fn filter)
    : typed_node<std::pair<K, V>>(node_kind::window, "reduce_by_key_and_window",
                                  {parent}),
      length_(length),
      f_(std::move(f)),
      inv_(std::move(inv)),
      filter_(std::move(filter)) {
    graph::set_fixed_slide(this, slide);
    parent->persist();
    // Leaving batches reach back to t - slide - length.
    parent->retain_for(length + slide);
    this->persist();
    this->retain_for(slide);
  }

  time_ms window_length() const noexcept override {
    return length_;
  }

  bool stateful() const noexcept override {
    return true;
  }

  bool requires_checkpoint() const noexcept override {
    return true;
  }

  void compute(task_context& ctx, uint32_t p,
               std::vector<std::pair<K, V>>& out) override {
    std::unordered_map<K, V, key_hash<K>> window;
    auto each = [&](uint32_t side, auto&& fn) {
      if (!ctx.has_blocks(this->index(), p, side))
        return;
      ctx.for_each_record<std::pair<K, V>>(this->index(), p, side, fn);
    };
    each(previous_window, [&](std::pair<K, V>&& kv) {
      window.emplace(std::move(kv.first), std::move(kv.second));
    });
    each(entering, [&](std::pair<K, V>&& kv) {
      auto i = window.find(kv.first);
      if (i == window.end())
        window.emplace(std::move(kv.first), std::move(kv.second));
      else
        i->second = f_(std::move(i->second), std::move(kv.second));
    });
    each(leaving, [&](std::pair<K, V>&& kv) {
      auto i = window.find(kv.first);
      if (i != window.end())
        i->second = inv_(std::move(i->second), std::move(kv.second));
    });
    out.reserve(out.size() + window.size());
    for (auto& kvp : window) {
      std::pair<K, V> kv{kvp.first, std::move(kvp.second)};
      if (!filter_ || filter_(kv))
        out.push_back(std::move(kv));
    }
  }

private:
  time_ms length_;
  F f_;
  Inv inv_;
  filter_fn filter_;
};

} // namespace sluice
