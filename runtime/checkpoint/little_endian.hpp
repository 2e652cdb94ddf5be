#pragma once

#include <cstdint>

// Fixed-width little-endian fields of the checkpoint file headers, written
// byte by byte so the format does not depend on the host's byte order or on
// the alignment of the position.

namespace sluice::le {

inline void put32(uint8_t* out, uint32_t x) noexcept {
  for (int i = 0; i < 4; ++i)
    out[i] = static_cast<uint8_t>(x >> (8 * i));
}

inline void put64(uint8_t* out, uint64_t x) noexcept {
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<uint8_t>(x >> (8 * i));
}

inline uint32_t get32(const uint8_t* in) noexcept {
  uint32_t x = 0;
  for (int i = 0; i < 4; ++i)
    x |= static_cast<uint32_t>(in[i]) << (8 * i);
  return x;
}

inline uint64_t get64(const uint8_t* in) noexcept {
  uint64_t x = 0;
  for (int i = 0; i < 8; ++i)
    x |= static_cast<uint64_t>(in[i]) << (8 * i);
  return x;
}

} // namespace sluice::le
