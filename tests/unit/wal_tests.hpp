#pragma once

// What the WAL tests (test_wal*.cpp) share: deterministic payloads, a
// writer on a test directory, appends, reading back by handle and by
// recovery, and damaging a segment file.

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/wal/format.hpp"
#include "runtime/wal/wal.hpp"

namespace sluice::test {

/// Deterministic payload number `i` of `size` bytes.
inline std::string payload(size_t i, size_t size) {
  std::string result(size, '\0');
  uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
  for (auto& c : result) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return result;
}

inline bool has_code(const caf::error& err, errc code) {
  return err.category() == error_category() &&
         err.code() == static_cast<uint8_t>(code);
}

inline bool mentions(const caf::error& err, const std::string& what) {
  return describe(err).find(what) != std::string::npos;
}

inline caf::expected<wal::handle> append(wal::writer& w, int64_t now,
                                  const std::string& bytes) {
  return w.append(now, bytes.data(), bytes.size());
}

inline std::unique_ptr<wal::writer>
open_writer(const std::string& dir, int64_t rolling_ms = 60000,
            wal::fsync_policy sync = wal::fsync_policy::none) {
  auto w = wal::writer::open(wal::options{dir, rolling_ms, sync});
  if (!w)
    FAIL("cannot open a writer on " << dir << ": " << describe(w.error()));
  return std::move(*w);
}

using record = std::pair<wal::handle, std::string>;

/// Everything recover() hands out, plus its report.
struct recovered {
  caf::expected<wal::recovery_report> report{wal::recovery_report{}};
  std::vector<record> records;
};

inline recovered recover_all(const std::string& dir) {
  recovered result;
  result.report =
      wal::recover(dir, [&](const wal::handle& h, const buffer& bytes) {
        result.records.emplace_back(h, std::string{bytes.view()});
      });
  return result;
}

inline std::string read_back(const std::string& dir, const wal::handle& h) {
  auto bytes = wal::read(dir, h);
  if (!bytes)
    FAIL("cannot read " << to_string(h) << ": " << describe(bytes.error()));
  return std::string{bytes->view()};
}

/// XORs the byte at `offset` of `path` with 0xFF.
inline void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream f{path, std::ios::in | std::ios::out | std::ios::binary};
  REQUIRE(f);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0xFF));
  REQUIRE(f);
}

inline void append_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out{path, std::ios::binary | std::ios::app};
  out << bytes;
  REQUIRE(out);
}

inline uint64_t end_of(const wal::handle& h) {
  return h.offset + wal::frame_header_size + h.length;
}

/// Appends `n` records of `size` bytes at time `now`; returns them.
inline std::vector<record> append_many(wal::writer& w, size_t n, size_t size,
                                int64_t now = 0) {
  std::vector<record> result;
  for (size_t i = 0; i < n; ++i) {
    auto bytes = payload(i, size);
    auto h = append(w, now, bytes);
    if (!h)
      FAIL("append " << i << " failed: " << describe(h.error()));
    result.emplace_back(*h, std::move(bytes));
  }
  return result;
}

} // namespace sluice::test
