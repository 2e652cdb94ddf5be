#pragma once

#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/block.hpp"
#include "runtime/exec/task_context.hpp"
#include "runtime/graph.hpp"
#include "runtime/sources/directory_scanner.hpp"
#include "runtime/sources/source.hpp"

namespace sluice {

/// A leaf whose partitions are blocks (received or queued): a task decodes
/// the blocks it was given.
template <class T>
class block_input_node : public typed_node<T> {
public:
  block_input_node(node_kind kind, std::string op)
    : typed_node<T>(kind, std::move(op), {}) {
  }

  void compute(task_context& ctx, uint32_t p, std::vector<T>& out) override {
    for (auto& bytes : ctx.blocks(this->index(), p)) {
      auto before = out.size();
      block_reader{bytes}.decode_into(out);
      ctx.count_input(out.size() - before);
    }
  }
};

/// Input nodes fed by a Receiver on a worker.
class receiver_input_base {
public:
  virtual ~receiver_input_base();

  /// Builds the source a Receiver runs; `seed` differs per receiver start.
  virtual source_ptr make_source(uint64_t seed) const = 0;
};

template <class T>
class receiver_input_node : public block_input_node<T>,
                            public receiver_input_base {
public:
  using factory = std::function<source_ptr(uint64_t seed)>;

  receiver_input_node(std::string op, factory f)
    : block_input_node<T>(node_kind::receiver_input, std::move(op)),
      factory_(std::move(f)) {
  }

  source_ptr make_source(uint64_t seed) const override {
    return factory_(seed);
  }

private:
  factory factory_;
};

/// Input nodes whose batches the driver holds (queue_stream).
class queue_input_base {
public:
  virtual ~queue_input_base();

  /// The next batch encoded as a block (with its record count), or nullopt
  /// when the queue is empty. Called by the JobGenerator once per batch.
  virtual std::optional<std::pair<buffer, uint64_t>> next_block() = 0;
};

template <class T>
class queue_input_node : public block_input_node<T>, public queue_input_base {
public:
  queue_input_node(std::deque<std::vector<T>> batches, bool one_at_a_time)
    : block_input_node<T>(node_kind::queue_input, "queue_stream"),
      queue_(std::move(batches)),
      one_at_a_time_(one_at_a_time) {
  }

  /// Appends a batch; thread-safe, may be called while the context runs.
  void push(std::vector<T> batch) {
    std::lock_guard<std::mutex> guard{mtx_};
    queue_.push_back(std::move(batch));
  }

  std::optional<std::pair<buffer, uint64_t>> next_block() override {
    std::lock_guard<std::mutex> guard{mtx_};
    if (queue_.empty())
      return std::nullopt;
    block_builder b;
    auto take = one_at_a_time_ ? size_t{1} : queue_.size();
    for (size_t i = 0; i < take; ++i) {
      for (auto& x : queue_.front())
        b.add(x);
      queue_.pop_front();
    }
    auto n = b.records();
    return std::make_pair(b.finish(), static_cast<uint64_t>(n));
  }

private:
  std::mutex mtx_;
  std::deque<std::vector<T>> queue_;
  bool one_at_a_time_;
};

/// textFileStream: each new file of a directory is one partition of the
/// batch that found it; tasks read its lines.
class directory_input_node : public typed_node<std::string> {
public:
  explicit directory_input_node(std::string dir);

  const std::string& dir() const noexcept {
    return dir_;
  }

  void compute(task_context& ctx, uint32_t p,
               std::vector<std::string>& out) override;

private:
  std::string dir_;
};

} // namespace sluice
