#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/block.hpp"
#include "runtime/exec/task_context.hpp"
#include "runtime/graph.hpp"
#include "runtime/hash.hpp"
#include "runtime/nodes/state_node.hpp"

namespace sluice {

/// The state of one key as map_with_state's function sees it (Spark's
/// State): read it, update it, remove it; while the key times out it can
/// only be read.
template <class S>
class key_state {
public:
  bool exists() const noexcept {
    return value_.has_value();
  }

  /// The state; throws std::logic_error if there is none.
  const S& get() const {
    if (!value_)
      throw std::logic_error("key_state::get on a key without state");
    return *value_;
  }

  void update(S x) {
    if (timing_out_)
      throw std::logic_error("cannot update the state of a key that is timing out");
    value_ = std::move(x);
    removed_ = false;
    updated_ = true;
  }

  void remove() {
    if (timing_out_)
      throw std::logic_error("cannot remove the state of a key that is timing out");
    value_.reset();
    removed_ = true;
    updated_ = false;
  }

  /// True when the function is called because the key was idle too long.
  bool is_timing_out() const noexcept {
    return timing_out_;
  }

private:
  template <class, class, class, class, class>
  friend class map_with_state_node;

  std::optional<S> value_;
  bool updated_ = false;
  bool removed_ = false;
  bool timing_out_ = false;
};

/// A record of a map_with_state node: a mapped value (kind 0) or one key's
/// state (kind 1: key, state, last time the key had data).
template <class K, class S, class R>
using state_record = std::tuple<uint8_t, K, std::optional<S>, std::optional<R>, time_ms>;

/// map_with_state: f(key, value, key_state&) -> R for every record, with
/// per-key state kept like update_state_by_key's (hash-partitioned,
/// persisted, read from the previous batch). Keys idle for `timeout` (0:
/// never) are removed after a last call with no value and is_timing_out().
/// `initial` seeds the state of the first batch. The node's records carry
/// both the mapped values and the state; dstream::map_with_state splits
/// them into the mapped stream and the state snapshots.
template <class K, class V, class S, class R, class F>
class map_with_state_node
  : public keyed_state_node<K, V, state_record<K, S, R>> {
public:
  using record = state_record<K, S, R>;

  map_with_state_node(typed_node<std::pair<K, V>>* parent, uint32_t buckets,
                      F f, time_ms timeout, std::vector<std::pair<K, S>> initial)
    : keyed_state_node<K, V, record>("map_with_state", parent, buckets),
      f_(std::move(f)),
      timeout_(timeout),
      initial_(std::move(initial)) {
  }

  void compute(task_context& ctx, uint32_t p, std::vector<record>& out) override {
    auto now = ctx.batch_time();
    struct entry {
      S value;
      time_ms last_seen;
    };
    std::unordered_map<K, entry, key_hash<K>> states;
    if (ctx.has_blocks(this->index(), p, state_side)) {
      this->template each<record>(ctx, p, state_side, [&](record&& rec) {
        if (std::get<0>(rec) == 1 && std::get<2>(rec))
          states.emplace(std::move(std::get<1>(rec)),
                         entry{std::move(*std::get<2>(rec)), std::get<4>(rec)});
      });
    } else {
      // No previous batch: the initial state, this partition's keys of it.
      std::string scratch;
      for (auto& [k, s] : initial_)
        if (detail::encode_keyed(scratch, k, s, this->buckets_) == p)
          states.emplace(k, entry{s, now});
    }
    this->template each<std::pair<K, V>>(ctx, p, 0, [&](std::pair<K, V>&& kv) {
      key_state<S> st;
      auto j = states.find(kv.first);
      if (j != states.end())
        st.value_ = j->second.value;
      auto mapped = f_(kv.first, std::optional<V>{std::move(kv.second)}, st);
      out.emplace_back(uint8_t{0}, kv.first, std::nullopt,
                       std::optional<R>{std::move(mapped)}, now);
      if (st.removed_) {
        if (j != states.end())
          states.erase(j);
      } else if (st.updated_) {
        states[kv.first] = entry{std::move(*st.value_), now};
      } else if (j != states.end()) {
        j->second.last_seen = now; // data arrived: the key is active
      }
    });
    for (auto i = states.begin(); i != states.end();) {
      if (timeout_ > 0 && now - i->second.last_seen >= timeout_) {
        key_state<S> st;
        st.value_ = i->second.value;
        st.timing_out_ = true;
        auto mapped = f_(i->first, std::optional<V>{}, st);
        out.emplace_back(uint8_t{0}, i->first, std::nullopt,
                         std::optional<R>{std::move(mapped)}, now);
        i = states.erase(i);
        continue;
      }
      out.emplace_back(uint8_t{1}, i->first, std::optional<S>{i->second.value},
                       std::nullopt, i->second.last_seen);
      ++i;
    }
  }

private:
  F f_;
  time_ms timeout_;
  std::vector<std::pair<K, S>> initial_;
};

} // namespace sluice
