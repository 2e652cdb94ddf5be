#pragma once

#include <string>
#include <vector>

#include "runtime/block.hpp"
#include "runtime/exec/task_context.hpp"
#include "runtime/graph.hpp"

namespace sluice {

/// window(length, slide): at every slide, the records of its parent's
/// batches in (t - length, t]. The parent is persisted: each of its batches
/// is computed once and kept in the BlockManagers as long as a window needs
/// it; the window's partitions are those cached partitions, which the
/// driver names in each task's reads.
template <class T>
class window_node : public typed_node<T> {
public:
  window_node(typed_node<T>* parent, time_ms length, time_ms slide)
    : typed_node<T>(node_kind::window, "window", {parent}), length_(length) {
    graph::set_fixed_slide(this, slide);
    parent->persist();
    parent->retain_for(length);
  }

  time_ms window_length() const noexcept override {
    return length_;
  }

  void compute(task_context& ctx, uint32_t p, std::vector<T>& out) override {
    // Typed when the parent's partition was cached deserialized here.
    ctx.read_into(this->index(), p, 0, out);
  }

private:
  time_ms length_;
};

} // namespace sluice
