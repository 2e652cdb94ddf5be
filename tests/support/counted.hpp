#pragma once

// A record type whose codec counts how often records are encoded and
// decoded, so tests can tell a read that decodes from one that does not.

#include <atomic>
#include <cstdint>

#include "runtime/codec.hpp"

namespace sluice::test {

struct counted {
  int64_t value = 0;

  friend bool operator==(const counted& x, const counted& y) {
    return x.value == y.value;
  }

  friend bool operator<(const counted& x, const counted& y) {
    return x.value < y.value;
  }
};

/// Process-wide counters; tests read differences around the code under test.
inline std::atomic<uint64_t> counted_encodes{0};
inline std::atomic<uint64_t> counted_decodes{0};

} // namespace sluice::test

namespace sluice {

template <>
struct codec<test::counted> {
  static void encode(byte_writer& w, const test::counted& x) {
    ++test::counted_encodes;
    codec<int64_t>::encode(w, x.value);
  }
  static test::counted decode(byte_reader& r) {
    ++test::counted_decodes;
    return test::counted{codec<int64_t>::decode(r)};
  }
};

} // namespace sluice
