#pragma once

#include <caf/error.hpp>

#include "runtime/exec/task_context.hpp"
#include "runtime/exec/task_spec.hpp"
#include "runtime/graph.hpp"

namespace sluice {

/// Runs a task whose inputs are in `ctx`: computes its final node's partition
/// and writes shuffle buckets or runs the output. This is the edge where
/// exceptions from user functions, codecs, files and blocks end: any of them
/// becomes an errc::task_failed error naming the task and the cause.
caf::error execute_task(graph& g, const task_spec& spec, task_context& ctx);

} // namespace sluice
