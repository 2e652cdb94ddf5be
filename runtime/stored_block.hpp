#pragma once

#include <cstdint>
#include <utility>

#include "runtime/buffer.hpp"
#include "runtime/typed_records.hpp"

namespace sluice {

/// A stored block: its records, encoded, decoded, or both.
///
/// A block put at a serialized level (and every received, queued or shuffle
/// block) carries `bytes`. A partition cached at a deserialized level
/// carries `typed` and no bytes on the node that computed it; the bytes are
/// made on demand (block_store::get_encoded) for remote readers, the replica
/// and spilling. A value: copies share the immutable bytes and records, so
/// any thread may read its copy while the store drops or spills the block.
struct stored_block {
  stored_block() = default;

  /// An encoded block of `n` records.
  stored_block(buffer encoded, uint64_t n) : bytes(std::move(encoded)), records(n) {
  }

  /// A partition held as decoded records.
  explicit stored_block(typed_records xs) : records(xs.size()), typed(std::move(xs)) {
  }

  buffer bytes;         ///< the encoded wire::Block; empty if only `typed`
  uint64_t records = 0;
  typed_records typed;  ///< the decoded records (deserialized levels)

  /// What the block counts against the memory budget: its bytes, or the
  /// estimate of its decoded records.
  uint64_t memory_size() const noexcept {
    return typed ? typed.estimated_bytes() : bytes.size();
  }
};

} // namespace sluice
