#pragma once

// The one way actors build a PutBlock: receivers (local and replica
// copies), task runners (replicas of cached partitions) and BlockManagers
// (ReplicateBlock).

#include <cstdint>
#include <string>

#include "messages/schemas.hpp"
#include "runtime/exec/task_spec.hpp"

namespace sluice {

/// Stores `bytes`, a block of `records` records, as `id` at `level`.
inline msg<wire::PutBlock> put_block(const std::string& id, uint64_t records,
                                     const storage_level& level, buffer bytes) {
  capnp::MallocMessageBuilder b;
  auto put = b.initRoot<wire::PutBlock>();
  put.setId(id);
  put.setRecords(records);
  encode(level, put.initLevel());
  return make_msg<wire::PutBlock>(b, std::move(bytes));
}

} // namespace sluice
