#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/buffer.hpp"

namespace sluice {

/// A stored block: its encoded bytes and how many records they hold.
struct stored_block {
  buffer bytes;
  uint64_t records = 0;
};

/// The blocks one node holds in memory, by id.
///
/// Owner: the node's BlockManager actor creates it; the node's TaskExecutor
/// and Receivers get a shared reference so local reads and writes skip a
/// message hop. Concurrency: every member is thread-safe (one mutex); the
/// stored bytes are immutable buffers, so a reader keeps a block alive after
/// it is dropped from the store. Lifetime: as long as the last holder.
class block_store {
public:
  /// Stores (or replaces) a block.
  void put(const std::string& id, stored_block block);

  std::optional<stored_block> get(const std::string& id) const;

  bool contains(const std::string& id) const;

  /// Drops the given ids; returns how many were present.
  size_t erase(const std::vector<std::string>& ids);

  /// Drops every block whose id starts with `prefix`; returns the count.
  size_t erase_prefix(const std::string& prefix);

  size_t size() const;

  /// Sum of the stored blocks' byte sizes.
  uint64_t bytes() const;

  std::vector<std::string> ids() const;

private:
  mutable std::mutex mtx_;
  std::map<std::string, stored_block> blocks_;
  uint64_t bytes_ = 0;
};

} // namespace sluice
