#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "runtime/buffer.hpp"
#include "runtime/error.hpp"

namespace sluice {

/// The spill files of one block store: one file per spilled block in a
/// directory of its own.
///
/// A file is a 40-byte header (magic "SLUICEBK", then little-endian payload
/// length, record count, stable_hash of the payload and stable_hash of the
/// block id) followed by the encoded block. Reading checks all of it and
/// the block's framing, so a truncated, overwritten, foreign or misplaced
/// file is an error value naming the block and the file, never a crash or
/// another block's records. Files are written
/// in place without fsync: they live only as long as their process.
///
/// Owner: the block_store, which creates it on the first spill.
/// Lifetime: the directory is created by create() and removed with every
/// file in it by the destructor (a clean shutdown leaves nothing behind).
/// Concurrency: every member is safe to call from several threads at once
/// for different files; the block store never uses one file from two
/// threads except for reads, which do not conflict.
class disk_store {
public:
  /// Creates a fresh directory `<base>/sluice-<tag>-XXXXXX` (`base`, and its
  /// parents, created if missing; empty `base`: the system temp directory).
  static caf::expected<std::unique_ptr<disk_store>> create(const std::string& base,
                                                           const std::string& tag);

  ~disk_store();

  disk_store(const disk_store&) = delete;
  disk_store& operator=(const disk_store&) = delete;

  const std::string& dir() const noexcept {
    return dir_;
  }

  /// A file name for block `id`, unique per `generation` (a block replaced
  /// while its old copy is being spilled never shares a file with it). Every
  /// byte of the id outside [A-Za-z0-9.-] is escaped, so ids map to
  /// distinct names.
  std::string path_for(const std::string& id, uint64_t generation) const;

  /// Writes block `id` (`bytes`, holding `records` records) to `path`;
  /// returns the file's size.
  caf::expected<uint64_t> write(const std::string& path, const std::string& id,
                                const buffer& bytes, uint64_t records) const;

  /// Reads block `id` back from `path`, checking header, length, checksum,
  /// record count and framing.
  caf::expected<buffer> read(const std::string& path, const std::string& id,
                             uint64_t records) const;

  /// Deletes a file; a file already gone is fine.
  void remove(const std::string& path) const noexcept;

  static constexpr size_t header_size = 40;

private:
  explicit disk_store(std::string dir);

  std::string dir_;
};

} // namespace sluice
