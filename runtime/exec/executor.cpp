#include "runtime/exec/executor.hpp"

#include <exception>

#include "runtime/block.hpp"
#include "runtime/codec.hpp"

#include <kj/exception.h>

namespace sluice {

namespace {

caf::error run(graph& g, const task_spec& spec, task_context& ctx) {
  auto* target = g.at(spec.target);
  if (target == nullptr)
    return make_error(errc::task_failed, spec.describe() + ": unknown node "
                                           + std::to_string(spec.target));
  if (spec.action == task_action::cache) {
    // The level comes with the task, as Spark's BlockManager takes it with
    // the put, not from this process's copy of the graph.
    auto block = target->materialize(ctx, spec.partition, spec.level);
    ctx.put_cached_block(target->index(), spec.partition, std::move(block),
                         spec.level);
    return caf::none;
  }
  if (spec.action == task_action::shuffle_write) {
    auto* shuffle = dynamic_cast<shuffle_base*>(target);
    if (shuffle == nullptr)
      return make_error(errc::task_failed,
                        spec.describe() + ": node " + target->id()
                          + " is not a shuffle");
    if (spec.shuffle_side >= target->parents().size())
      return make_error(errc::task_failed,
                        spec.describe() + ": shuffle " + target->id()
                          + " has no side " + std::to_string(spec.shuffle_side));
    shuffle->write(ctx, spec.shuffle_side, spec.partition);
  } else {
    auto* out = dynamic_cast<output_base*>(target);
    if (out == nullptr)
      return make_error(errc::task_failed, spec.describe() + ": node "
                                             + target->id()
                                             + " is not an output");
    out->run(ctx, spec.partition);
  }
  return caf::none;
}

} // namespace

caf::error execute_task(graph& g, const task_spec& spec, task_context& ctx) {
  try {
    return run(g, spec, ctx);
  } catch (const kj::Exception& e) {
    return make_error(errc::task_failed,
                      spec.describe() + ": corrupt input block: "
                        + e.getDescription().cStr());
  } catch (const decode_error& e) {
    return make_error(errc::task_failed,
                      spec.describe() + ": corrupt record: " + e.what());
  } catch (const std::exception& e) {
    return make_error(errc::task_failed, spec.describe() + ": " + e.what());
  } catch (...) {
    return make_error(errc::task_failed,
                      spec.describe() + ": unknown exception");
  }
}

} // namespace sluice
