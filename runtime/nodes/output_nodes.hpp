#pragma once

#include <cstdio>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "runtime/block.hpp"
#include "runtime/exec/task_context.hpp"
#include "runtime/graph.hpp"
#include "runtime/sinks/text_files.hpp"
#include "runtime/text_format.hpp"

namespace sluice {

/// Base of output nodes over records of type T.
template <class T>
class output_node : public node_base, public output_base {
public:
  output_node(std::string op, typed_node<T>* parent)
    : node_base(node_kind::output, std::move(op), {parent}), parent_(parent) {
  }

protected:
  std::vector<T> compute_parent(task_context& ctx, uint32_t p) {
    std::vector<T> xs;
    parent_->get(ctx, p, xs);
    return xs;
  }

  typed_node<T>* parent_;
};

/// print(n): the first n records of each batch on the driver's stdout, in
/// Spark's format.
template <class T>
class print_node : public output_node<T> {
public:
  print_node(typed_node<T>* parent, size_t n)
    : output_node<T>("print", parent), n_(n) {
  }

  bool collects() const override {
    return true;
  }

  void run(task_context& ctx, uint32_t p) override {
    auto xs = this->compute_parent(ctx, p);
    // One more than shown, so the driver knows whether to print "...".
    block_builder b;
    for (size_t i = 0; i < xs.size() && i <= n_; ++i)
      b.add(xs[i]);
    ctx.set_result(b.finish());
  }

  void on_driver(time_ms t, std::vector<buffer>& results) override {
    std::string text = "-------------------------------------------\nTime: "
                       + std::to_string(t)
                       + " ms\n-------------------------------------------\n";
    size_t shown = 0;
    bool more = false;
    for (auto& r : results) {
      if (r.empty())
        continue;
      for (auto& x : read_block<T>(r)) {
        if (shown == n_) {
          more = true;
          break;
        }
        append_text(text, x);
        text += '\n';
        ++shown;
      }
    }
    if (more)
      text += "...\n";
    text += '\n';
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }

private:
  size_t n_;
};

/// foreach_batch(f): f(batch time, partitions) on the driver, the analogue of
/// foreachRDD. Every partition travels to the driver, so this suits small
/// results; write large ones from the workers with foreach_partition.
template <class T, class F>
class foreach_batch_node : public output_node<T> {
public:
  foreach_batch_node(typed_node<T>* parent, F f)
    : output_node<T>("foreach_batch", parent), f_(std::move(f)) {
  }

  bool collects() const override {
    return true;
  }

  void run(task_context& ctx, uint32_t p) override {
    ctx.set_result(make_block(this->compute_parent(ctx, p)));
  }

  void on_driver(time_ms t, std::vector<buffer>& results) override {
    std::vector<std::vector<T>> parts;
    parts.reserve(results.size());
    for (auto& r : results)
      parts.push_back(r.empty() ? std::vector<T>{} : read_block<T>(r));
    f_(t, parts);
  }

private:
  F f_;
};

/// foreach_partition(f): f(output_partition, records) on the worker that
/// computed the partition. The output_partition is the unique id a sink uses
/// for exactly-once writes.
template <class T, class F>
class foreach_partition_node : public output_node<T> {
public:
  foreach_partition_node(std::string op, typed_node<T>* parent, F f)
    : output_node<T>(std::move(op), parent), f_(std::move(f)) {
  }

  bool collects() const override {
    return false;
  }

  void run(task_context& ctx, uint32_t p) override {
    auto xs = this->compute_parent(ctx, p);
    output_partition id{ctx.batch_time(), this->id(), p,
                        this->partitions(ctx.counts()), ctx.attempt()};
    f_(id, xs);
  }

  void on_driver(time_ms, std::vector<buffer>&) override {
    // nop: nothing is collected
  }

private:
  F f_;
};

} // namespace sluice
