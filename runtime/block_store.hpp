#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/disk_store.hpp"
#include "runtime/storage_level.hpp"
#include "runtime/stored_block.hpp"

namespace sluice {

/// How a block store is set up (sluice.block-manager.*).
struct block_store_options {
  /// Memory the store's blocks may take before disk-level blocks spill.
  uint64_t memory_budget = uint64_t{512} << 20;
  /// Where the spill directory is created; empty: the system temp dir.
  std::string local_dir;
  /// Names the spill directory (the node id).
  std::string tag = "node";
};

/// The blocks one node holds, by id: in memory, or spilled to files.
///
/// Blocks put at a level with disk (MEMORY_AND_DISK*) stay in memory while
/// the store's memory use is within its budget; a put that exceeds it
/// spills the least recently used disk-level blocks (put or read counts as
/// a use) to files in a spill directory until the memory use is back within
/// budget, or no disk-level block is left in memory. Memory-only blocks
/// (every other level, received, queued and shuffle blocks) are never
/// spilled: they stay even over budget, as Spark keeps what it cannot
/// recompute. A spilled block stays on disk until it is dropped; get()
/// reads the file back each time (checked, see disk_store), and a file
/// that is missing or damaged is a corrupt_data error (and the block is
/// forgotten), so a reader moves on to another copy.
///
/// Owner: the node's BlockManager actor creates it; the node's TaskExecutor
/// and Receivers get a shared reference so local reads and writes skip a
/// message hop. Concurrency: every member is thread-safe (one mutex guards
/// the index); stored buffers and typed records are immutable, so a reader
/// keeps a block alive after it is dropped. File writes, file reads and
/// encoding run outside the mutex: a put that spills marks its victims,
/// writes their files unlocked, then commits each spill unless the block
/// was dropped or replaced meanwhile (its file is deleted then).
/// Lifetime: as long as the last holder; the destructor removes the spill
/// directory and every file in it.
class block_store {
public:
  block_store();

  explicit block_store(block_store_options opts);

  ~block_store();

  block_store(const block_store&) = delete;
  block_store& operator=(const block_store&) = delete;

  /// Stores (or replaces) a block at `level` (only `use_disk` matters here:
  /// whether the block may spill). May spill disk-level blocks, this one
  /// included, before it returns.
  void put(const std::string& id, stored_block block,
           storage_level level = storage_level::memory_only_ser());

  /// The block as held: its typed records if it was put deserialized and
  /// is in memory, else its bytes (read back from its file if spilled).
  /// Errors: errc::not_found if absent; errc::corrupt_data (or io_failed)
  /// if its spill file is missing or damaged.
  caf::expected<stored_block> get(const std::string& id);

  /// Like get(), but the bytes are always set: typed records are encoded
  /// for the caller (remote readers, replication); the store keeps them
  /// decoded.
  caf::expected<stored_block> get_encoded(const std::string& id);

  bool contains(const std::string& id) const;

  /// True if the block is held in a spill file.
  bool on_disk(const std::string& id) const;

  /// Drops the given ids (deleting their files); returns how many were
  /// present.
  size_t erase(const std::vector<std::string>& ids);

  /// Drops every block whose id starts with `prefix`; returns the count.
  size_t erase_prefix(const std::string& prefix);

  size_t size() const;

  /// Memory the blocks held in memory take (estimates for typed records).
  uint64_t bytes() const;

  std::vector<std::string> ids() const;

  /// Counters for metrics and tests.
  struct stats {
    size_t blocks = 0;          ///< held, in memory or on disk
    uint64_t memory_bytes = 0;  ///< as bytes()
    size_t disk_blocks = 0;     ///< held in spill files
    uint64_t disk_bytes = 0;    ///< size of those files
    uint64_t spills = 0;        ///< blocks written to files, ever
    uint64_t disk_reads = 0;    ///< reads served from files, ever
  };

  stats statistics() const;

  uint64_t memory_budget() const noexcept {
    return opts_.memory_budget;
  }

  /// The spill directory; empty until the first spill creates it.
  std::string spill_dir() const;

private:
  struct entry {
    stored_block block;      ///< in memory; empty when spilled
    uint64_t records = 0;
    uint64_t memory = 0;     ///< counted in memory_ while in memory
    uint64_t generation = 0; ///< changes when the id is put again
    bool spilling = false;   ///< picked as a victim, file being written
    std::string file;        ///< the spill file, once spilled
    uint64_t file_bytes = 0;
    bool in_lru = false;
    std::list<std::string>::iterator lru;
  };

  struct victim {
    std::string id;
    uint64_t generation;
    stored_block block;
  };

  using entry_map = std::map<std::string, entry>;

  /// Picks disk-level blocks to spill, least recently used first, until
  /// memory use minus what is already being spilled fits the budget.
  std::vector<victim> pick_victims_locked();

  /// Writes the victims' files and commits them (takes the lock per
  /// commit).
  void spill(std::vector<victim> victims);

  /// Unlinks an entry's bookkeeping; returns its spill file (if any) for
  /// the caller to delete after unlocking.
  std::string forget_locked(entry_map::iterator i);

  disk_store* disk_locked();

  block_store_options opts_;
  mutable std::mutex mtx_;
  entry_map blocks_;
  std::list<std::string> lru_; ///< in-memory disk-level ids, oldest first
  uint64_t memory_ = 0;
  uint64_t spilling_ = 0;      ///< memory of victims whose files are being written
  uint64_t disk_bytes_ = 0;
  size_t disk_blocks_ = 0;
  uint64_t next_generation_ = 0;
  uint64_t spills_ = 0;
  uint64_t disk_reads_ = 0;
  std::unique_ptr<disk_store> disk_;
  bool disk_failed_ = false;   ///< creating the spill directory failed once
};

} // namespace sluice
