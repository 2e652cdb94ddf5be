#pragma once

// Shuffles: the map side runs at the end of the parent's stage and writes one
// block per non-empty bucket into the local BlockManager; the reduce side is
// a leaf of the next stage that reads its bucket from every map task.

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/block.hpp"
#include "runtime/codec.hpp"
#include "runtime/exec/task_context.hpp"
#include "runtime/graph.hpp"
#include "runtime/hash.hpp"

namespace sluice {

namespace detail {

/// One block builder per bucket, filled with already-encoded records.
class bucket_writer {
public:
  explicit bucket_writer(uint32_t buckets) : builders_(buckets) {
  }

  block_builder& operator[](uint32_t i) {
    return builders_[i];
  }

  /// Stores every non-empty bucket as a shuffle block of `node`'s `side`.
  void flush(task_context& ctx, uint32_t node, uint32_t side = 0) {
    for (uint32_t b = 0; b < builders_.size(); ++b) {
      if (builders_[b].empty())
        continue;
      auto n = builders_[b].records();
      ctx.put_shuffle_block(node, side, b, builders_[b].finish(), n);
    }
  }

private:
  std::vector<block_builder> builders_;
};

/// Encodes (k, v) into `scratch` and returns the bucket of k: the hash of the
/// key's encoding, identical on every node.
template <class K, class V>
uint32_t encode_keyed(std::string& scratch, const K& k, const V& v,
                      uint32_t buckets) {
  scratch.clear();
  byte_writer w{scratch};
  codec<K>::encode(w, k);
  auto key_len = scratch.size();
  codec<V>::encode(w, v);
  return static_cast<uint32_t>(
    stable_hash(std::string_view{scratch}.substr(0, key_len)) % buckets);
}

/// The map side of a keyed shuffle without map-side combine: buckets
/// partition `p` of `parent` by key and stores the buckets for `side`.
template <class K, class X>
void write_keyed(task_context& ctx, typed_node<std::pair<K, X>>* parent,
                 uint32_t p, uint32_t node, uint32_t buckets, uint32_t side = 0) {
  std::vector<std::pair<K, X>> in;
  parent->get(ctx, p, in);
  bucket_writer out{buckets};
  std::string scratch;
  for (auto& [k, x] : in)
    out[encode_keyed(scratch, k, x, buckets)].add_encoded(scratch);
  out.flush(ctx, node, side);
}

} // namespace detail

/// combine_by_key, the general keyed shuffle behind reduce_by_key,
/// group_by_key and count_by_value. With map-side combine, a map task merges
/// its own values per key first (create + merge_value) and ships combiners;
/// without it (group_by_key) values travel as they are.
template <class K, class V, class C, class Create, class MergeValue,
          class MergeCombiners>
class combine_by_key_node : public typed_node<std::pair<K, C>>,
                            public shuffle_base {
public:
  combine_by_key_node(std::string op, typed_node<std::pair<K, V>>* parent,
                      uint32_t buckets, bool map_side_combine, Create create,
                      MergeValue merge_value, MergeCombiners merge_combiners)
    : typed_node<std::pair<K, C>>(node_kind::shuffle, std::move(op), {parent}),
      parent_(parent),
      buckets_(buckets),
      map_side_combine_(map_side_combine),
      create_(std::move(create)),
      merge_value_(std::move(merge_value)),
      merge_combiners_(std::move(merge_combiners)) {
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
    if (map_side_combine_) {
      combined_map combined;
      combined.reserve(in.size());
      for (auto& [k, v] : in)
        add_value(combined, std::move(k), std::move(v));
      for (auto& [k, c] : combined)
        out[detail::encode_keyed(scratch, k, c, buckets_)].add_encoded(scratch);
    } else {
      for (auto& [k, v] : in)
        out[detail::encode_keyed(scratch, k, v, buckets_)].add_encoded(scratch);
    }
    out.flush(ctx, this->index());
  }

  void compute(task_context& ctx, uint32_t p,
               std::vector<std::pair<K, C>>& out) override {
    combined_map combined;
    for (auto& bytes : ctx.blocks(this->index(), p)) {
      block_reader reader{bytes};
      for (size_t i = 0; i < reader.size(); ++i) {
        if (map_side_combine_) {
          auto kc = decode_all<std::pair<K, C>>(reader.record(i));
          auto j = combined.find(kc.first);
          if (j == combined.end())
            combined.emplace(std::move(kc.first), std::move(kc.second));
          else
            j->second = merge_combiners_(std::move(j->second),
                                         std::move(kc.second));
        } else {
          auto kv = decode_all<std::pair<K, V>>(reader.record(i));
          add_value(combined, std::move(kv.first), std::move(kv.second));
        }
      }
    }
    out.reserve(out.size() + combined.size());
    for (auto& kvp : combined)
      out.emplace_back(std::move(const_cast<K&>(kvp.first)),
                       std::move(kvp.second));
  }

private:
  using combined_map = std::unordered_map<K, C, key_hash<K>>;

  void add_value(combined_map& combined, K&& k, V&& v) {
    auto j = combined.find(k);
    if (j == combined.end())
      combined.emplace(std::move(k), create_(std::move(v)));
    else
      j->second = merge_value_(std::move(j->second), std::move(v));
  }

  typed_node<std::pair<K, V>>* parent_;
  uint32_t buckets_;
  bool map_side_combine_;
  Create create_;
  MergeValue merge_value_;
  MergeCombiners merge_combiners_;
};

/// repartition(n): spreads records evenly over n partitions, round robin from
/// a start that depends only on the map partition, so a re-run places every
/// record exactly where the first run did.
template <class T>
class repartition_node : public typed_node<T>, public shuffle_base {
public:
  repartition_node(typed_node<T>* parent, uint32_t buckets)
    : typed_node<T>(node_kind::shuffle, "repartition", {parent}),
      parent_(parent),
      buckets_(buckets) {
  }

  uint32_t buckets() const override {
    return buckets_;
  }

  uint32_t partitions(const partition_counts&) const override {
    return buckets_;
  }

  void write(task_context& ctx, uint32_t, uint32_t p) override {
    std::vector<T> in;
    parent_->get(ctx, p, in);
    detail::bucket_writer out{buckets_};
    auto next = static_cast<uint32_t>(stable_hash(std::to_string(p)) % buckets_);
    for (auto& x : in) {
      out[next].add(x);
      next = (next + 1) % buckets_;
    }
    out.flush(ctx, this->index());
  }

  void compute(task_context& ctx, uint32_t p, std::vector<T>& out) override {
    for (auto& bytes : ctx.blocks(this->index(), p))
      block_reader{bytes}.decode_into(out);
  }

private:
  typed_node<T>* parent_;
  uint32_t buckets_;
};

/// cogroup: for every key of either parent, all values of the left parent
/// and all values of the right one. Both parents are hash-partitioned into
/// the same buckets (each one's map tasks write their own side), so a reduce
/// task sees both sides of its keys. The joins are built on it.
template <class K, class V, class W>
class cogroup_node
  : public typed_node<std::pair<K, std::pair<std::vector<V>, std::vector<W>>>>,
    public shuffle_base {
public:
  using value_type = std::pair<K, std::pair<std::vector<V>, std::vector<W>>>;

  cogroup_node(typed_node<std::pair<K, V>>* left,
               typed_node<std::pair<K, W>>* right, uint32_t buckets)
    : typed_node<value_type>(node_kind::shuffle, "cogroup", {left, right}),
      left_(left),
      right_(right),
      buckets_(buckets) {
  }

  uint32_t buckets() const override {
    return buckets_;
  }

  uint32_t partitions(const partition_counts&) const override {
    return buckets_;
  }

  void write(task_context& ctx, uint32_t side, uint32_t p) override {
    if (side == 0)
      detail::write_keyed(ctx, left_, p, this->index(), buckets_, side);
    else
      detail::write_keyed(ctx, right_, p, this->index(), buckets_, side);
  }

  void compute(task_context& ctx, uint32_t p, std::vector<value_type>& out) override {
    std::unordered_map<K, std::pair<std::vector<V>, std::vector<W>>, key_hash<K>> groups;
    for (auto& bytes : ctx.blocks(this->index(), p, 0)) {
      block_reader reader{bytes};
      for (size_t i = 0; i < reader.size(); ++i) {
        auto kv = decode_all<std::pair<K, V>>(reader.record(i));
        groups[std::move(kv.first)].first.push_back(std::move(kv.second));
      }
    }
    for (auto& bytes : ctx.blocks(this->index(), p, 1)) {
      block_reader reader{bytes};
      for (size_t i = 0; i < reader.size(); ++i) {
        auto kw = decode_all<std::pair<K, W>>(reader.record(i));
        groups[std::move(kw.first)].second.push_back(std::move(kw.second));
      }
    }
    out.reserve(out.size() + groups.size());
    for (auto& kvp : groups)
      out.emplace_back(std::move(const_cast<K&>(kvp.first)), std::move(kvp.second));
  }

private:
  typed_node<std::pair<K, V>>* left_;
  typed_node<std::pair<K, W>>* right_;
  uint32_t buckets_;
};

} // namespace sluice
