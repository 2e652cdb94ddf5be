#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <kj/exception.h>

#include "runtime/block.hpp"
#include "runtime/buffer.hpp"
#include "runtime/codec.hpp"

using namespace sluice;

namespace {

/// What reading a (possibly damaged) block of strings gave.
struct read_outcome {
  bool threw = false;
  std::vector<std::string> records;
};

/// Reads `bytes` as a block of strings; every exception the contract allows
/// counts as a refusal. Anything else (a crash, an out of bounds read) is
/// what the corruption tests look for.
read_outcome try_read_strings(const buffer& bytes) {
  read_outcome result;
  try {
    result.records = read_block<std::string>(bytes);
  } catch (const kj::Exception&) {
    result.threw = true;
  } catch (const decode_error&) {
    result.threw = true;
  } catch (const std::exception&) {
    result.threw = true;
  }
  return result;
}

buffer flipped(const buffer& bytes, size_t pos) {
  std::string copy{bytes.view()};
  copy[pos] = static_cast<char>(copy[pos] ^ 0xff);
  return buffer::copy_of(copy.data(), copy.size());
}

/// Strings of 7 characters encode to exactly 8 bytes (one length byte), so
/// the block holds no padding: every byte of it carries meaning.
std::vector<std::string> padding_free_records(size_t n) {
  std::vector<std::string> xs;
  for (size_t i = 0; i < n; ++i) {
    auto x = std::to_string(1000000 + i); // 7 digits
    REQUIRE(x.size() == 7);
    xs.push_back(x);
  }
  return xs;
}

} // namespace

TEST_CASE("a block of strings round trips in order", "[block]") {
  std::vector<std::string> xs{"alpha", "", "beta gamma", std::string{"nul\0byte", 8},
                              std::string(1000, 'x')};
  auto bytes = make_block(xs);
  CHECK(bytes.size() % 8 == 0);
  CHECK(read_block<std::string>(bytes) == xs);
  block_reader reader{bytes};
  REQUIRE(reader.size() == xs.size());
  for (size_t i = 0; i < xs.size(); ++i)
    CHECK(reader.record(i) == encode_to_string(xs[i]));
}

TEST_CASE("a block of pairs round trips in order", "[block]") {
  std::vector<std::pair<std::string, int64_t>> xs{
    {"a", 1}, {"b", -2}, {"a", INT64_MAX}, {"", INT64_MIN}};
  CHECK(read_block<std::pair<std::string, int64_t>>(make_block(xs)) == xs);
}

TEST_CASE("an empty block is a valid block without records", "[block]") {
  auto bytes = make_block(std::vector<std::string>{});
  CHECK_FALSE(bytes.empty());
  CHECK(bytes.size() % 8 == 0);
  block_reader reader{bytes};
  CHECK(reader.size() == 0);
  CHECK(read_block<std::string>(bytes).empty());
}

TEST_CASE("a block of one hundred thousand records round trips", "[block]") {
  std::vector<int64_t> xs;
  for (int64_t i = 0; i < 100000; ++i)
    xs.push_back(i * 7919 - 50000);
  auto bytes = make_block(xs);
  auto ys = read_block<int64_t>(bytes);
  REQUIRE(ys.size() == xs.size());
  CHECK(ys == xs);
}

TEST_CASE("block builder counts records and bytes and resets on finish", "[block]") {
  block_builder b;
  CHECK(b.empty());
  b.add(std::string{"abc"});   // 1 length byte + 3
  b.add(int64_t{300});         // zig-zag 600 takes 2 varint bytes
  b.add_encoded(encode_to_string(std::string{"pre-encoded"}));
  CHECK(b.records() == 3);
  CHECK(b.bytes() == 4 + 2 + 12);
  auto bytes = b.finish();
  CHECK(b.empty());
  CHECK(b.records() == 0);
  CHECK(b.bytes() == 0);
  block_reader reader{bytes};
  REQUIRE(reader.size() == 3);
  CHECK(decode_all<std::string>(reader.record(0)) == "abc");
  CHECK(decode_all<int64_t>(reader.record(1)) == 300);
  CHECK(decode_all<std::string>(reader.record(2)) == "pre-encoded");
  // The builder is reusable and the second block holds only the new records.
  b.add(std::string{"again"});
  CHECK(read_block<std::string>(b.finish()) == std::vector<std::string>{"again"});
}

TEST_CASE("a block reader keeps its bytes alive after the caller drops them",
          "[block]") {
  std::unique_ptr<block_reader> reader;
  {
    auto bytes = make_block(std::vector<std::string>{"kept", "alive"});
    reader = std::make_unique<block_reader>(bytes);
  }
  REQUIRE(reader->size() == 2);
  CHECK(decode_all<std::string>(reader->record(1)) == "alive");
}

TEST_CASE("a block whose size is not a multiple of eight bytes is refused",
          "[block]") {
  auto bytes = make_block(std::vector<std::string>{"some", "records"});
  for (size_t cut : {size_t{1}, size_t{3}, size_t{7}}) {
    auto odd = buffer::copy_of(bytes.data(), bytes.size() - cut);
    REQUIRE(odd.size() % 8 != 0);
    CHECK(odd.words().size() == 0);
    CHECK_THROWS_AS(block_reader{odd}, decode_error);
    CHECK_THROWS_AS(read_block<std::string>(odd), decode_error);
  }
  CHECK_THROWS_AS(block_reader{buffer{}}, decode_error);
  CHECK_THROWS_AS(block_reader{buffer::copy_of("abcde", 5)}, decode_error);
}

TEST_CASE("garbage bytes are refused and never read out of bounds", "[block]") {
  // A word-aligned buffer of garbage: a huge segment count.
  std::vector<uint8_t> garbage(64, 0xab);
  auto out = try_read_strings(buffer::copy_of(garbage.data(), garbage.size()));
  CHECK(out.threw);
  // All zeros: one empty segment, so the root pointer lies beyond it.
  std::vector<uint8_t> zeros(8, 0);
  CHECK(try_read_strings(buffer::copy_of(zeros.data(), zeros.size())).threw);
}

TEST_CASE("flipping any single byte of a block is detected or changes its "
          "records",
          "[block][corruption]") {
  auto xs = padding_free_records(24);
  auto bytes = make_block(xs);
  REQUIRE(read_block<std::string>(bytes) == xs);
  size_t refused = 0;
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    auto out = try_read_strings(flipped(bytes, pos));
    INFO("flipped byte " << pos << " of " << bytes.size());
    if (out.threw)
      ++refused;
    else
      CHECK(out.records != xs);
  }
  // The segment table, the root pointer, the records list pointer and the 24
  // one-byte length prefixes cannot be damaged without an error.
  CHECK(refused >= 8 + 8 + 8 + 24);
}

TEST_CASE("flipping bytes of a large block is detected or changes its records",
          "[block][corruption]") {
  auto xs = padding_free_records(100000);
  auto bytes = make_block(xs);
  REQUIRE(bytes.size() > 1600000);
  std::vector<size_t> positions;
  // Every byte of the framing at the front, then a dense sample of the rest
  // (pointers and record bytes), then the last bytes.
  for (size_t pos = 0; pos < 128; ++pos)
    positions.push_back(pos);
  for (size_t pos = 128; pos < bytes.size(); pos += bytes.size() / 499 + 3)
    positions.push_back(pos);
  for (size_t pos = bytes.size() - 16; pos < bytes.size(); ++pos)
    positions.push_back(pos);
  for (auto pos : positions) {
    auto out = try_read_strings(flipped(bytes, pos));
    INFO("flipped byte " << pos << " of " << bytes.size());
    if (pos == 14 || pos == 15) {
      // The root pointer's pointer count: Cap'n Proto lets a struct carry
      // more pointers than its schema knows (schema evolution), and in a
      // block this large the extra slots lie inside the segment. The records
      // are then read unchanged, which is not corruption of any record.
      if (!out.threw)
        CHECK(out.records == xs);
      continue;
    }
    if (!out.threw)
      CHECK(out.records != xs);
  }
}

TEST_CASE("a block truncated at any length is refused", "[block][corruption]") {
  std::vector<std::string> xs{"one", "two", "three", "four", "five",
                              std::string(40, 'z')};
  auto bytes = make_block(xs);
  for (size_t len = 0; len < bytes.size(); ++len) {
    INFO("truncated to " << len << " of " << bytes.size() << " bytes");
    auto out = try_read_strings(buffer::copy_of(bytes.data(), len));
    CHECK(out.threw);
  }
}

TEST_CASE("a large block truncated at sampled lengths is refused",
          "[block][corruption]") {
  auto xs = padding_free_records(20000);
  auto bytes = make_block(xs);
  for (size_t len = 0; len < bytes.size(); len += bytes.size() / 61 + 1) {
    INFO("truncated to " << len << " of " << bytes.size() << " bytes");
    CHECK(try_read_strings(buffer::copy_of(bytes.data(), len)).threw);
  }
  for (size_t len = bytes.size() - 24; len < bytes.size(); ++len) {
    INFO("truncated to " << len << " of " << bytes.size() << " bytes");
    CHECK(try_read_strings(buffer::copy_of(bytes.data(), len)).threw);
  }
}

TEST_CASE("records of the wrong type are refused by the decoder", "[block]") {
  auto bytes = make_block(std::vector<std::string>{"not a number at all"});
  // The string's length prefix decodes as an integer, leaving trailing bytes.
  CHECK_THROWS_AS(read_block<int64_t>(bytes), decode_error);
}

TEST_CASE("a buffer copy keeps the exact size and reports words only when "
          "aligned",
          "[block][buffer]") {
  const char text[] = "0123456789abcdef";
  auto whole = buffer::copy_of(text, 16);
  CHECK(whole.size() == 16);
  CHECK(whole.view() == "0123456789abcdef");
  CHECK(whole.words().size() == 2);
  auto part = buffer::copy_of(text, 11);
  CHECK(part.size() == 11);
  CHECK(part.view() == "0123456789a");
  CHECK(part.words().size() == 0);
  CHECK(reinterpret_cast<uintptr_t>(part.data()) % 8 == 0);
  buffer none;
  CHECK(none.empty());
  CHECK(none.size() == 0);
  CHECK(none.data() == nullptr);
  // Copies share the bytes.
  auto copy = whole;
  CHECK(copy.data() == whole.data());
}
