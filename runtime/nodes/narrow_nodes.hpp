#pragma once

// Narrow transformations: partition p of the result comes from partition p
// of the parent, so a chain of them runs inside one task, one tight loop per
// operator over the whole partition (no per-record virtual call).

#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/exec/task_context.hpp"
#include "runtime/graph.hpp"

namespace sluice {

/// What transform() functions see besides the records.
struct partition_info {
  time_ms time = 0;
  uint32_t partition = 0;
  uint32_t partitions = 0;
};

/// Collects the records a flat_map function emits.
template <class T>
class emitter {
public:
  explicit emitter(std::vector<T>& out) : out_(out) {
  }

  void operator()(T x) {
    out_.push_back(std::move(x));
  }

  template <class... Ts>
  void emplace(Ts&&... xs) {
    out_.emplace_back(std::forward<Ts>(xs)...);
  }

private:
  std::vector<T>& out_;
};

template <class In, class Out, class F>
class map_node : public typed_node<Out> {
public:
  map_node(typed_node<In>* parent, F f)
    : typed_node<Out>(node_kind::narrow, "map", {parent}),
      parent_(parent),
      f_(std::move(f)) {
  }

  void compute(task_context& ctx, uint32_t p, std::vector<Out>& out) override {
    if constexpr (std::is_same_v<In, Out>) {
      // Same type: transform in place, no second vector.
      auto before = out.size();
      parent_->get(ctx, p, out);
      for (auto i = out.begin() + before; i != out.end(); ++i)
        *i = f_(std::move(*i));
    } else {
      std::vector<In> in;
      parent_->get(ctx, p, in);
      out.reserve(out.size() + in.size());
      for (auto& x : in)
        out.push_back(f_(std::move(x)));
    }
  }

private:
  typed_node<In>* parent_;
  F f_;
};

template <class T, class F>
class filter_node : public typed_node<T> {
public:
  filter_node(typed_node<T>* parent, F f)
    : typed_node<T>(node_kind::narrow, "filter", {parent}),
      parent_(parent),
      f_(std::move(f)) {
  }

  void compute(task_context& ctx, uint32_t p, std::vector<T>& out) override {
    auto before = static_cast<std::ptrdiff_t>(out.size());
    parent_->get(ctx, p, out);
    auto keep_end = std::remove_if(out.begin() + before, out.end(),
                                   [this](const T& x) { return !f_(x); });
    out.erase(keep_end, out.end());
  }

private:
  typed_node<T>* parent_;
  F f_;
};

/// flat_map in two forms: `f(x)` returning a range of Out, or (when Out is
/// given explicitly) `f(x, emit)` calling emit(y) per result, which avoids a
/// container per record.
template <class In, class Out, class F, bool Emitting>
class flat_map_node : public typed_node<Out> {
public:
  flat_map_node(typed_node<In>* parent, F f)
    : typed_node<Out>(node_kind::narrow, "flat_map", {parent}),
      parent_(parent),
      f_(std::move(f)) {
  }

  void compute(task_context& ctx, uint32_t p, std::vector<Out>& out) override {
    std::vector<In> in;
    parent_->get(ctx, p, in);
    if constexpr (Emitting) {
      emitter<Out> emit{out};
      for (auto& x : in)
        f_(std::move(x), emit);
    } else {
      for (auto& x : in)
        for (auto&& y : f_(std::move(x)))
          out.push_back(std::forward<decltype(y)>(y));
    }
  }

private:
  typed_node<In>* parent_;
  F f_;
};

/// map_partitions (`f(std::vector<In>&&)`) and transform
/// (`f(const partition_info&, std::vector<In>&&)`), both returning vector<Out>.
template <class In, class Out, class F, bool WithInfo>
class partition_fn_node : public typed_node<Out> {
public:
  partition_fn_node(typed_node<In>* parent, F f)
    : typed_node<Out>(node_kind::narrow,
                      WithInfo ? "transform" : "map_partitions", {parent}),
      parent_(parent),
      f_(std::move(f)) {
  }

  void compute(task_context& ctx, uint32_t p, std::vector<Out>& out) override {
    std::vector<In> in;
    parent_->get(ctx, p, in);
    std::vector<Out> result;
    if constexpr (WithInfo) {
      partition_info info{ctx.batch_time(), p, this->partitions(ctx.counts())};
      result = f_(info, std::move(in));
    } else {
      result = f_(std::move(in));
    }
    if (out.empty())
      out = std::move(result);
    else
      std::move(result.begin(), result.end(), std::back_inserter(out));
  }

private:
  typed_node<In>* parent_;
  F f_;
};

template <class T>
class union_node : public typed_node<T> {
public:
  explicit union_node(std::vector<typed_node<T>*> parents)
    : typed_node<T>(node_kind::union_, "union",
                    std::vector<node_base*>(parents.begin(), parents.end())),
      typed_parents_(std::move(parents)) {
  }

  void compute(task_context& ctx, uint32_t p, std::vector<T>& out) override {
    auto [branch, q] = this->union_branch(p, ctx.counts());
    typed_parents_[branch]->get(ctx, q, out);
  }

private:
  std::vector<typed_node<T>*> typed_parents_;
};

} // namespace sluice
