#include "actors/block_manager.hpp"

#include "actors/put_block.hpp"
#include "messages/schemas.hpp"
#include "runtime/block.hpp"
#include "runtime/exec/task_spec.hpp"
#include "runtime/log.hpp"

namespace sluice {

const char* block_manager_state::name = "block_manager";

caf::behavior block_manager(caf::stateful_actor<block_manager_state>* self,
                            std::string node, std::shared_ptr<block_store> store) {
  self->state.node = std::move(node);
  self->state.store = std::move(store);
  return {
    [self](const msg<wire::PutBlock>& m) -> caf::result<msg<wire::PutBlockAck>> {
      std::string id;
      uint64_t records = 0;
      storage_level level;
      if (auto err = read_msg(m, [&](wire::PutBlock::Reader r) {
            id = r.getId();
            records = r.getRecords();
            level = decode(r.getLevel());
          })) {
        SLUICE_WARN("block_manager", self->state.node << ": " << describe(err));
        return err;
      }
      // Refused at the door: a corrupt block stored here would fail every
      // task that later reads it.
      if (auto err = check_block(m.payload, records, id)) {
        SLUICE_WARN("block_manager", self->state.node << ": " << describe(err));
        return err;
      }
      // Kept encoded whatever the level says about deserialization: this
      // actor has no record types, and a replica is only read when the
      // first copy is lost. The level's disk flag is honoured.
      self->state.store->put(id, stored_block{m.payload, records}, level);
      capnp::MallocMessageBuilder b;
      auto ack = b.initRoot<wire::PutBlockAck>();
      ack.setId(id);
      ack.setNode(self->state.node);
      return make_msg<wire::PutBlockAck>(b);
    },
    [self](const msg<wire::GetBlock>& m) -> caf::result<msg<wire::BlockData>> {
      std::string id;
      if (auto err = read_msg(m, [&](wire::GetBlock::Reader r) { id = r.getId(); })) {
        SLUICE_WARN("block_manager", self->state.node << ": " << describe(err));
        return err;
      }
      // Deserialized partitions are encoded for the remote reader; spilled
      // ones are read back. A damaged spill file is an error the reader
      // answers by trying the next copy.
      auto block = self->state.store->get_encoded(id);
      if (!block && block.error().code() != static_cast<uint8_t>(errc::not_found)) {
        SLUICE_WARN("block_manager", self->state.node << ": " << describe(block.error()));
        return std::move(block.error());
      }
      capnp::MallocMessageBuilder b;
      auto data = b.initRoot<wire::BlockData>();
      data.setId(id);
      data.setFound(static_cast<bool>(block));
      return make_msg<wire::BlockData>(b, block ? block->bytes : buffer{});
    },
    [self](const msg<wire::ReplicateBlock>& m) -> caf::result<msg<wire::PutBlockAck>> {
      std::string id;
      std::string target;
      storage_level level;
      if (auto err = read_msg(m, [&](wire::ReplicateBlock::Reader r) {
            id = r.getId();
            target = r.getTarget();
            level = decode(r.getLevel());
          })) {
        SLUICE_WARN("block_manager", self->state.node << ": " << describe(err));
        return err;
      }
      if (m.caps.empty() || !m.caps[0])
        return make_error(errc::malformed_message,
                          "ReplicateBlock of " + id + " without the target's "
                          "BlockManager");
      auto block = self->state.store->get_encoded(id);
      if (!block) {
        SLUICE_WARN("block_manager", self->state.node << ": cannot copy " << id
                                                      << " to " << target << ": "
                                                      << describe(block.error()));
        return std::move(block.error());
      }
      // The target answers the requester (the tracker) directly.
      self->delegate(m.caps[0], put_block(id, block->records, level, block->bytes));
      return caf::delegated<msg<wire::PutBlockAck>>{};
    },
    [self](const msg<wire::DropBlocks>& m) {
      auto& store = *self->state.store;
      auto err = read_msg(m, [&](wire::DropBlocks::Reader r) {
        std::vector<std::string> ids;
        for (auto id : r.getIds())
          ids.emplace_back(id);
        store.erase(ids);
        for (auto prefix : r.getPrefixes())
          store.erase_prefix(prefix);
      });
      if (err)
        SLUICE_WARN("block_manager", self->state.node << ": " << describe(err));
    },
  };
}

} // namespace sluice
