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

void fetch(checkpointer_ptr self, size_t j, size_t p, size_t loc) {
  auto& st = self->state;
  auto& ref = st.jobs[j].partitions[p];
  auto done = [self] {
    if (--self->state.outstanding == 0)
      write_all(self);
  };
  while (loc < ref.locations.size()) {
    auto bm = st.block_managers.find(ref.locations[loc]);
    if (bm == st.block_managers.end()) {
      ++loc;
      continue;
    }
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::GetBlock>().setId(ref.id);
    self->request(bm->second, std::chrono::seconds{30}, make_msg<wire::GetBlock>(b))
      .then(
        [self, j, p, loc, done](const msg<wire::BlockData>& reply) {
          bool found = false;
          auto err = read_msg(reply, [&](wire::BlockData::Reader r) {
            found = r.getFound();
          });
          if (err || !found) {
            fetch(self, j, p, loc + 1);
            return;
          }
          auto& st = self->state;
          st.parts[j][p] = state_partition{reply.payload,
                                           st.jobs[j].partitions[p].records};
          done();
        },
        [self, j, p, loc](caf::error&) { fetch(self, j, p, loc + 1); });
    return;
  }
  st.errors[j] = "partition " + std::to_string(p) + " (" + ref.id
                 + ") is not readable from any location";
  done();
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
  for (size_t j = 0; j < st.jobs.size(); ++j) {
    st.parts[j].resize(st.jobs[j].partitions.size());
    st.outstanding += st.jobs[j].partitions.size();
  }
  if (st.outstanding == 0)
    write_all(self);
  else
    for (size_t j = 0; j < st.jobs.size(); ++j)
      for (size_t p = 0; p < st.jobs[j].partitions.size(); ++p)
        fetch(self, j, p, 0);
  return {[](stop_atom) {}};
}

} // namespace sluice
