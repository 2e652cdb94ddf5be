#include "runtime/graph.hpp"

#include <stdexcept>

#include "runtime/exec/task_context.hpp"

#include "runtime/hash.hpp"

namespace sluice {

const char* to_string(node_kind x) {
  switch (x) {
    case node_kind::receiver_input:
      return "receiver_input";
    case node_kind::directory_input:
      return "directory_input";
    case node_kind::queue_input:
      return "queue_input";
    case node_kind::narrow:
      return "narrow";
    case node_kind::union_:
      return "union";
    case node_kind::shuffle:
      return "shuffle";
    case node_kind::window:
      return "window";
    case node_kind::output:
      return "output";
  }
  return "unknown";
}

void partition_counts::set(uint32_t node, uint32_t count) {
  counts_[node] = count;
}

uint32_t partition_counts::at(uint32_t node) const {
  auto i = counts_.find(node);
  if (i == counts_.end())
    throw std::out_of_range("no partition count for node "
                            + std::to_string(node));
  return i->second;
}

node_base::node_base(node_kind kind, std::string op,
                     std::vector<node_base*> parents)
  : kind_(kind), op_(std::move(op)), parents_(std::move(parents)) {
}

node_base::~node_base() = default;

uint32_t node_base::partitions(const partition_counts& counts) const {
  switch (kind_) {
    case node_kind::union_: {
      uint32_t sum = 0;
      for (auto* p : parents_)
        sum += counts.at(p->index());
      return sum;
    }
    case node_kind::narrow:
    case node_kind::output:
      return counts.at(parents_.front()->index());
    default:
      return counts.at(index_);
  }
}

std::pair<uint32_t, uint32_t>
node_base::union_branch(uint32_t p, const partition_counts& counts) const {
  for (uint32_t i = 0; i < parents_.size(); ++i) {
    auto n = counts.at(parents_[i]->index());
    if (p < n)
      return {i, p};
    p -= n;
  }
  throw std::out_of_range("partition out of range for union node " + id_);
}

shuffle_base::~shuffle_base() = default;

output_base::~output_base() = default;

graph::graph() = default;

graph::~graph() = default;

void graph::adopt(std::unique_ptr<node_base> x) {
  if (frozen_)
    throw std::logic_error("the DStream graph cannot change after start()");
  if (x->fixed_slide_ > 0) {
    x->slide_ = x->fixed_slide_;
  } else if (x->parents_.empty()) {
    x->slide_ = batch_interval_;
  } else {
    x->slide_ = x->parents_.front()->slide_;
    for (auto* p : x->parents_)
      if (p->slide_ != x->slide_)
        throw std::invalid_argument(
          x->op_ + " combines streams with different slides: "
          + std::to_string(x->slide_) + " ms and " + std::to_string(p->slide_)
          + " ms");
  }
  x->index_ = static_cast<uint32_t>(nodes_.size());
  x->id_ = x->op_ + "-" + std::to_string(x->index_);
  nodes_.push_back(std::move(x));
}

caf::error graph::rename(node_base* x, std::string id) {
  if (frozen_)
    return make_error(errc::bad_graph,
                      "cannot rename " + x->id() + " after start()");
  if (id.empty())
    return make_error(errc::bad_graph, "an operator id must not be empty");
  for (auto& n : nodes_)
    if (n.get() != x && n->id_ == id)
      return make_error(errc::bad_graph, "operator id '" + id
                                           + "' is used twice (" + n->op_
                                           + " and " + x->op_ + ")");
  x->id_ = std::move(id);
  return caf::none;
}

node_base* graph::find(const std::string& id) const {
  for (auto& n : nodes_)
    if (n->id_ == id)
      return n.get();
  return nullptr;
}

node_base* graph::at(uint32_t index) const {
  if (index >= nodes_.size())
    return nullptr;
  return nodes_[index].get();
}

std::vector<node_base*> graph::outputs() const {
  std::vector<node_base*> result;
  for (auto& n : nodes_)
    if (n->kind() == node_kind::output)
      result.push_back(n.get());
  return result;
}

std::vector<node_base*> graph::inputs() const {
  std::vector<node_base*> result;
  for (auto& n : nodes_)
    if (n->is_input())
      result.push_back(n.get());
  return result;
}

uint64_t graph::fingerprint() const {
  std::string shape;
  for (auto& n : nodes_) {
    shape += n->id();
    shape += '|';
    shape += n->op();
    shape += '|';
    shape += to_string(n->kind());
    for (auto* p : n->parents()) {
      shape += '<';
      shape += std::to_string(p->index());
    }
    shape += ';';
  }
  return stable_hash(shape);
}

stored_block node_base::materialize(task_context&, uint32_t,
                                    const storage_level&) {
  throw std::logic_error("node " + id_ + " cannot be cached");
}

std::vector<node_base*> graph::persisted() const {
  std::vector<node_base*> result;
  for (auto& n : nodes_)
    if (n->persisted())
      result.push_back(n.get());
  return result;
}

caf::error graph::validate() const {
  if (outputs().empty())
    return make_error(errc::bad_graph,
                      "the graph has no output operation (print, "
                      "foreach_batch, save_as_text_files, ...): nothing "
                      "would ever run");
  return caf::none;
}

} // namespace sluice
