#include "actors/state_checkpointer.hpp"

#include "actors/atoms.hpp"
#include "messages/schemas.hpp"
#include "runtime/log.hpp"

namespace sluice {

const char* state_checkpointer_state::name = "state_checkpointer";

namespace {

using checkpointer_ptr = caf::stateful_actor<state_checkpointer_state>*;

void write_all(checkpointer_ptr self) {
  auto& st = self->state;
  std::vector<uint32_t> written;
  for (size_t j = 0; j < st.jobs.size(); ++j) {
    auto& job = st.jobs[j];
    if (st.errors[j].empty())
      if (auto err = write_state_checkpoint(job.path, job.node_id, job.batch,
                                            st.parts[j]))
        st.errors[j] = describe(err);
    if (st.errors[j].empty())
      written.push_back(job.node);
    else
      SLUICE_ERROR("checkpoint", "data checkpoint of " << job.node_id << " at "
                                                       << job.batch << " ms failed: "
                                                       << st.errors[j]
                                                       << " (the previous one stays)");
  }
  self->send(st.parent, state_checkpointed_atom::value, st.jobs.front().batch,
             std::move(written));
  self->quit();
}

/// Reads partition `p` of job `j` from its copies (a damaged or missing
/// copy moves on to the next, as a task's read does).
void fetch(checkpointer_ptr self, size_t j, size_t p) {
  auto done = [self] {
    if (--self->state.outstanding == 0)
      write_all(self);
  };
  read_next_copy(
    self, [self, j, p]() -> block_read& { return self->state.reads[j][p]; },
    [self](const std::string& loc) -> const caf::actor* {
      auto& bms = self->state.block_managers;
      auto bm = bms.find(loc);
      return bm == bms.end() ? nullptr : &bm->second;
    },
    std::string{},
    [self, j, p, done](const buffer& bytes, const std::string&) {
      auto& st = self->state;
      st.parts[j][p] = state_partition{bytes, st.jobs[j].partitions[p].records};
      done();
    },
    [self, j, p, done] {
      auto& st = self->state;
      auto& r = st.reads[j][p];
      st.errors[j] = "partition " + std::to_string(p) + " (" + r.ref.id
                     + ") is not readable from any location ("
                     + (r.failures.empty() ? "none listed" : r.failures) + ")";
      done();
    });
}

} // namespace

caf::behavior state_checkpointer(checkpointer_ptr self, caf::actor parent,
                                 std::map<std::string, caf::actor> block_managers,
                                 std::vector<state_checkpoint_job> jobs) {
  auto& st = self->state;
  st.parent = std::move(parent);
  st.block_managers = std::move(block_managers);
  st.jobs = std::move(jobs);
  st.parts.resize(st.jobs.size());
  st.errors.resize(st.jobs.size());
  st.reads.resize(st.jobs.size());
  for (size_t j = 0; j < st.jobs.size(); ++j) {
    st.parts[j].resize(st.jobs[j].partitions.size());
    for (auto& ref : st.jobs[j].partitions) {
      block_read r;
      r.ref = ref;
      st.reads[j].push_back(std::move(r));
    }
    st.outstanding += st.jobs[j].partitions.size();
  }
  if (st.outstanding == 0)
    write_all(self);
  else
    for (size_t j = 0; j < st.jobs.size(); ++j)
      for (size_t p = 0; p < st.jobs[j].partitions.size(); ++p)
        fetch(self, j, p);
  return {[](stop_atom) {}};
}

} // namespace sluice
