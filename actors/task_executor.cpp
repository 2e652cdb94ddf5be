#include "actors/task_executor.hpp"

#include <caf/actor_system.hpp>

#include "actors/atoms.hpp"
#include "actors/task_runner.hpp"
#include "messages/schemas.hpp"
#include "runtime/log.hpp"

namespace sluice {

const char* task_executor_state::name = "task_executor";

caf::behavior task_executor(caf::stateful_actor<task_executor_state>* self,
                            std::string node, graph* g,
                            std::shared_ptr<block_store> store) {
  self->state.node = std::move(node);
  self->state.g = g;
  self->state.store = std::move(store);
  return {
    [self](const msg<wire::LaunchTask>& m)
      -> caf::result<msg<wire::TaskResult>> {
      auto& st = self->state;
      task_spec spec;
      if (auto err = read_msg(m, [&](wire::LaunchTask::Reader r) {
            spec = decode(r);
          })) {
        SLUICE_WARN("task_executor", st.node << ": " << describe(err));
        return err;
      }
      if (!st.ran_a_task) {
        st.ran_a_task = true;
        SLUICE_INFO("task_executor", st.node << ": runs its first task, "
                                             << spec.describe());
      }
      auto id = st.next_id++;
      auto rp = self->make_response_promise();
      st.pending.emplace(id, rp);
      self->spawn<caf::detached>(task_runner, std::move(spec), m.caps, st.node,
                                 st.g, st.store,
                                 caf::actor_cast<caf::actor>(self), id);
      return caf::delegated<msg<wire::TaskResult>>{};
    },
    [self](task_done_atom, uint64_t id, msg<wire::TaskResult>& result) {
      auto& pending = self->state.pending;
      auto i = pending.find(id);
      if (i == pending.end())
        return;
      i->second.deliver(std::move(result));
      pending.erase(i);
    },
  };
}

} // namespace sluice
