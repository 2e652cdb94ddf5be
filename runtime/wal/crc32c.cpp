#include "runtime/wal/crc32c.hpp"

#include <boost/crc.hpp>

namespace sluice {

namespace {

// Reflected in and out, initial remainder and final XOR all ones: the
// standard CRC-32C parameters (RFC 3720, appendix B.4).
using crc32c_engine =
    boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

// Bit i becomes bit 31 - i.
uint32_t reverse_bits(uint32_t x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
  x = ((x >> 8) & 0x00FF00FFu) | ((x & 0x00FF00FFu) << 8);
  return (x >> 16) | (x << 16);
}

} // namespace

uint32_t crc32c(const void* data, size_t size) {
  crc32c_engine engine;
  engine.process_bytes(data, size);
  return engine.checksum();
}

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size) {
  // A finished CRC is the running remainder XOR the final mask, and for a
  // reflected CRC Boost holds that remainder bit-reversed while taking an
  // initial remainder in unreflected form: undo both to resume.
  crc32c_engine engine{reverse_bits(crc ^ 0xFFFFFFFFu)};
  engine.process_bytes(data, size);
  return engine.checksum();
}

} // namespace sluice
