#include "runtime/checkpoint/crc.hpp"

#include <boost/crc.hpp>

namespace sluice {

namespace {

// Reflected in and out, initial value and final XOR all ones: CRC-32C.
using crc32c_engine
  = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

/// Boost keeps its remainder in reflected form and takes an initial
/// remainder in unreflected form, so continuing from a finished checksum
/// means undoing the final XOR and the reflection.
uint32_t reflect32(uint32_t x) {
  uint32_t result = 0;
  for (int i = 0; i < 32; ++i) {
    result = (result << 1) | (x & 1u);
    x >>= 1;
  }
  return result;
}

} // namespace

uint32_t checkpoint_crc32c(const void* data, size_t size) {
  crc32c_engine engine;
  engine.process_bytes(data, size);
  return engine.checksum();
}

uint32_t checkpoint_crc32c_extend(uint32_t crc, const void* data,
                                  size_t size) {
  crc32c_engine engine{reflect32(crc ^ 0xFFFFFFFFu)};
  engine.process_bytes(data, size);
  return engine.checksum();
}

} // namespace sluice
