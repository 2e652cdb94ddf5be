#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice {

// CRC32C (Castagnoli, as in leveldb, ext4 and iSCSI) for checkpoint files.
// The WAL gets its own runtime/wal/crc32c.hpp on another branch; the two are
// the same function and are to be merged into one header.

/// CRC32C of `size` bytes at `data` (check value: "123456789" -> 0xE3069283).
/// Pure function, any thread.
uint32_t checkpoint_crc32c(const void* data, size_t size);

/// The CRC32C of A followed by B, given `crc` = CRC32C of A: lets a writer
/// checksum a file that is written piece by piece without joining the
/// pieces (leveldb's crc32c::Extend). Extending 0 is the plain CRC.
uint32_t checkpoint_crc32c_extend(uint32_t crc, const void* data, size_t size);

} // namespace sluice
