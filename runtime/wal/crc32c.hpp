#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice {

/// CRC32C (Castagnoli, the polynomial of iSCSI, ext4 and leveldb) of `size`
/// bytes. Computed by Boost.CRC; the check value of "123456789" is
/// 0xE3069283. Thread-safe (pure function).
uint32_t crc32c(const void* data, size_t size);

/// Continues `crc`, the CRC32C of some bytes A, over the next bytes B:
/// returns the CRC32C of A followed by B. crc32c_extend(0, p, n) equals
/// crc32c(p, n).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);

/// Masks a CRC before it is stored next to the data it covers (leveldb's
/// rotation plus constant). Computing the CRC of a string that contains
/// embedded CRCs tends to give degenerate results; a file of records whose
/// payloads are themselves framed records (a log of logs) would otherwise
/// be more likely to contain byte runs that look like valid frames.
inline uint32_t crc32c_mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/// Inverts crc32c_mask.
inline uint32_t crc32c_unmask(uint32_t masked) {
  auto rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

} // namespace sluice
