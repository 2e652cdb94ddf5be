#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "runtime/codec.hpp"

namespace {

struct point {
  int32_t x = 0;
  int32_t y = 0;
  std::string label;
  bool operator==(const point& other) const {
    return x == other.x && y == other.y && label == other.label;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, point& p) {
  return f(caf::meta::type_name("point"), p.x, p.y, p.label);
}

template <class T>
T round_trip(const T& x) {
  return sluice::decode_all<T>(sluice::encode_to_string(x));
}

} // namespace

TEST_CASE("numbers survive encoding at their limits", "[codec]") {
  CHECK(round_trip<int64_t>(0) == 0);
  CHECK(round_trip<int64_t>(-1) == -1);
  CHECK(round_trip(std::numeric_limits<int64_t>::min())
        == std::numeric_limits<int64_t>::min());
  CHECK(round_trip(std::numeric_limits<int64_t>::max())
        == std::numeric_limits<int64_t>::max());
  CHECK(round_trip(std::numeric_limits<uint64_t>::max())
        == std::numeric_limits<uint64_t>::max());
  CHECK(round_trip<int8_t>(-128) == -128);
  CHECK(round_trip(3.25) == 3.25);
  CHECK(round_trip(-0.5f) == -0.5f);
  CHECK(round_trip(true));
  CHECK_FALSE(round_trip(false));
}

TEST_CASE("small integers take one byte", "[codec]") {
  CHECK(sluice::encode_to_string<int64_t>(1).size() == 1);
  CHECK(sluice::encode_to_string<uint32_t>(127).size() == 1);
  CHECK(sluice::encode_to_string<int64_t>(-64).size() == 1);
}

TEST_CASE("strings pairs tuples vectors optionals and maps round trip", "[codec]") {
  CHECK(round_trip(std::string{}) == "");
  CHECK(round_trip(std::string{"hello\0world", 11}) == std::string{"hello\0world", 11});
  auto p = std::make_pair(std::string{"word"}, int64_t{42});
  CHECK(round_trip(p) == p);
  auto t = std::make_tuple(1, std::string{"two"}, 3.0, false);
  CHECK(round_trip(t) == t);
  std::vector<std::optional<std::string>> v{std::string{"a"}, std::nullopt, std::string{}};
  CHECK(round_trip(v) == v);
  std::map<std::string, std::vector<int>> m{{"x", {1, 2}}, {"y", {}}};
  CHECK(round_trip(m) == m);
  std::unordered_map<int, std::string> um{{1, "one"}, {2, "two"}};
  CHECK(round_trip(um) == um);
}

TEST_CASE("user types with a CAF-style inspect function round trip", "[codec]") {
  point pt{3, -4, "corner"};
  CHECK(round_trip(pt) == pt);
  std::vector<std::pair<point, int>> xs{{pt, 1}, {point{}, 2}};
  CHECK(round_trip(xs) == xs);
}

TEST_CASE("truncated input is refused with a decode error", "[codec]") {
  auto bytes = sluice::encode_to_string(std::make_pair(std::string{"abcdef"}, int64_t{1} << 40));
  for (size_t n = 0; n < bytes.size(); ++n)
    CHECK_THROWS_AS((sluice::decode_all<std::pair<std::string, int64_t>>(bytes.substr(0, n))),
                    sluice::decode_error);
}

TEST_CASE("trailing bytes after a record are refused", "[codec]") {
  auto bytes = sluice::encode_to_string<int64_t>(5) + "x";
  CHECK_THROWS_AS(sluice::decode_all<int64_t>(bytes), sluice::decode_error);
}

TEST_CASE("a hostile element count does not allocate", "[codec]") {
  // A vector claiming 2^62 elements in a 10-byte input.
  std::string bytes;
  sluice::byte_writer w{bytes};
  w.put_varint(uint64_t{1} << 62);
  CHECK_THROWS_AS(sluice::decode_all<std::vector<int>>(bytes), sluice::decode_error);
}

TEST_CASE("out of range integers are refused", "[codec]") {
  auto bytes = sluice::encode_to_string<int64_t>(1000);
  CHECK_THROWS_AS(sluice::decode_all<int8_t>(bytes), sluice::decode_error);
  auto big = sluice::encode_to_string<uint64_t>(70000);
  CHECK_THROWS_AS(sluice::decode_all<uint16_t>(big), sluice::decode_error);
}
