#pragma once

// Record codecs: how a value of type T becomes bytes inside a block and back.
//
// Built in: bool, integers (zig-zag varints), float/double, std::string,
// std::pair, std::tuple, std::vector, std::optional, std::map and
// std::unordered_map. User types: a CAF-style `inspect` function, e.g.
//
//   struct point { int32_t x; int32_t y; };
//   template <class Inspector>
//   typename Inspector::result_type inspect(Inspector& f, point& p) {
//     return f(caf::meta::type_name("point"), p.x, p.y);
//   }
//
// or a specialization of sluice::codec<T> (e.g. over a Cap'n Proto struct).
// Encodings are self-delimiting, so records can be nested and concatenated.
// Decoding untrusted bytes never reads out of bounds: a short or malformed
// input throws decode_error, which the task or block reader turns into an
// error value at its edge.

#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/meta/annotation.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/save_callback.hpp>
#include <caf/meta/type_name.hpp>

namespace sluice {

/// Thrown by codec decoders on malformed input.
class decode_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Appends encoded values to a byte string.
class byte_writer {
public:
  explicit byte_writer(std::string& out) : out_(out) {
  }

  void put_varint(uint64_t x) {
    while (x >= 0x80) {
      out_.push_back(static_cast<char>((x & 0x7f) | 0x80));
      x >>= 7;
    }
    out_.push_back(static_cast<char>(x));
  }

  void put_bytes(const void* data, size_t n) {
    out_.append(static_cast<const char*>(data), n);
  }

  void put_fixed64(uint64_t x) {
    char tmp[8];
    for (int i = 0; i < 8; ++i)
      tmp[i] = static_cast<char>(x >> (8 * i));
    out_.append(tmp, 8);
  }

  std::string& out() {
    return out_;
  }

private:
  std::string& out_;
};

/// Reads encoded values from a byte range, bounds-checked.
class byte_reader {
public:
  explicit byte_reader(std::string_view in) : in_(in) {
  }

  uint64_t get_varint() {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size())
        throw decode_error("truncated varint");
      auto b = static_cast<uint8_t>(in_[pos_++]);
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0)
        return result;
    }
    throw decode_error("varint longer than 10 bytes");
  }

  std::string_view get_bytes(size_t n) {
    if (n > in_.size() - pos_)
      throw decode_error("truncated field: need " + std::to_string(n)
                         + " bytes, have " + std::to_string(in_.size() - pos_));
    auto result = in_.substr(pos_, n);
    pos_ += n;
    return result;
  }

  uint64_t get_fixed64() {
    auto b = get_bytes(8);
    uint64_t x = 0;
    for (int i = 0; i < 8; ++i)
      x |= static_cast<uint64_t>(static_cast<uint8_t>(b[i])) << (8 * i);
    return x;
  }

  /// A length prefix for `n` elements, each at least one byte: refuses counts
  /// the remaining input cannot hold, so hostile lengths never allocate.
  size_t get_count() {
    auto n = get_varint();
    if (n > in_.size() - pos_)
      throw decode_error("element count " + std::to_string(n)
                         + " exceeds the remaining input");
    return static_cast<size_t>(n);
  }

  bool at_end() const {
    return pos_ == in_.size();
  }

  size_t remaining() const {
    return in_.size() - pos_;
  }

private:
  std::string_view in_;
  size_t pos_ = 0;
};

template <class T, class = void>
struct codec;

namespace detail {

struct encode_inspector;
struct decode_inspector;

template <class T, class = void>
struct is_inspectable : std::false_type {};

template <class T>
struct is_inspectable<
  T, std::void_t<decltype(inspect(std::declval<encode_inspector&>(),
                                  std::declval<T&>()))>> : std::true_type {};

} // namespace detail

/// True if sluice can encode T.
template <class T, class = void>
struct has_codec : std::false_type {};

template <class T>
struct has_codec<T, std::void_t<decltype(codec<T>::encode(
                      std::declval<byte_writer&>(), std::declval<const T&>()))>>
  : std::true_type {};

template <class T>
void encode(byte_writer& w, const T& x) {
  codec<T>::encode(w, x);
}

template <class T>
T decode(byte_reader& r) {
  return codec<T>::decode(r);
}

/// Encodes one value into a fresh string (tests and cold paths).
template <class T>
std::string encode_to_string(const T& x) {
  std::string out;
  byte_writer w{out};
  codec<T>::encode(w, x);
  return out;
}

/// Decodes a value that must span all of `bytes`.
template <class T>
T decode_all(std::string_view bytes) {
  byte_reader r{bytes};
  auto result = codec<T>::decode(r);
  if (!r.at_end())
    throw decode_error(std::to_string(r.remaining())
                       + " trailing bytes after a record");
  return result;
}

// -- built-in codecs ----------------------------------------------------------

template <>
struct codec<bool> {
  static void encode(byte_writer& w, bool x) {
    w.put_varint(x ? 1 : 0);
  }
  static bool decode(byte_reader& r) {
    auto x = r.get_varint();
    if (x > 1)
      throw decode_error("bad bool");
    return x == 1;
  }
};

template <class T>
struct codec<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static void encode(byte_writer& w, T x) {
    if constexpr (std::is_signed_v<T>) {
      auto v = static_cast<int64_t>(x);
      w.put_varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
    } else {
      w.put_varint(static_cast<uint64_t>(x));
    }
  }
  static T decode(byte_reader& r) {
    auto raw = r.get_varint();
    if constexpr (std::is_signed_v<T>) {
      auto v = static_cast<int64_t>((raw >> 1) ^ (~(raw & 1) + 1));
      if (v < static_cast<int64_t>(std::numeric_limits<T>::min())
          || v > static_cast<int64_t>(std::numeric_limits<T>::max()))
        throw decode_error("integer out of range");
      return static_cast<T>(v);
    } else {
      if (raw > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        throw decode_error("integer out of range");
      return static_cast<T>(raw);
    }
  }
};

template <class T>
struct codec<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static_assert(sizeof(T) <= 8, "long double is not supported");
  static void encode(byte_writer& w, T x) {
    if constexpr (sizeof(T) == 8) {
      uint64_t bits;
      std::memcpy(&bits, &x, 8);
      w.put_fixed64(bits);
    } else {
      uint32_t bits;
      std::memcpy(&bits, &x, 4);
      w.put_fixed64(bits);
    }
  }
  static T decode(byte_reader& r) {
    auto bits = r.get_fixed64();
    T x;
    if constexpr (sizeof(T) == 8) {
      std::memcpy(&x, &bits, 8);
    } else {
      auto b32 = static_cast<uint32_t>(bits);
      std::memcpy(&x, &b32, 4);
    }
    return x;
  }
};

template <>
struct codec<std::string> {
  static void encode(byte_writer& w, const std::string& x) {
    w.put_varint(x.size());
    w.put_bytes(x.data(), x.size());
  }
  static std::string decode(byte_reader& r) {
    auto n = r.get_varint();
    auto bytes = r.get_bytes(static_cast<size_t>(n));
    return std::string{bytes};
  }
};

template <class A, class B>
struct codec<std::pair<A, B>> {
  static void encode(byte_writer& w, const std::pair<A, B>& x) {
    codec<A>::encode(w, x.first);
    codec<B>::encode(w, x.second);
  }
  static std::pair<A, B> decode(byte_reader& r) {
    auto a = codec<A>::decode(r);
    auto b = codec<B>::decode(r);
    return {std::move(a), std::move(b)};
  }
};

template <class... Ts>
struct codec<std::tuple<Ts...>> {
  static void encode(byte_writer& w, const std::tuple<Ts...>& x) {
    std::apply([&](const auto&... xs) { (codec<std::decay_t<decltype(xs)>>::encode(w, xs), ...); },
               x);
  }
  static std::tuple<Ts...> decode(byte_reader& r) {
    // Braced initialization evaluates left to right, matching encode's order.
    return std::tuple<Ts...>{codec<Ts>::decode(r)...};
  }
};

template <class T>
struct codec<std::optional<T>> {
  static void encode(byte_writer& w, const std::optional<T>& x) {
    w.put_varint(x ? 1 : 0);
    if (x)
      codec<T>::encode(w, *x);
  }
  static std::optional<T> decode(byte_reader& r) {
    auto tag = r.get_varint();
    if (tag == 0)
      return std::nullopt;
    if (tag != 1)
      throw decode_error("bad optional tag");
    return codec<T>::decode(r);
  }
};

template <class T>
struct codec<std::vector<T>> {
  static void encode(byte_writer& w, const std::vector<T>& xs) {
    w.put_varint(xs.size());
    for (auto& x : xs)
      codec<T>::encode(w, x);
  }
  static std::vector<T> decode(byte_reader& r) {
    auto n = r.get_count();
    std::vector<T> xs;
    xs.reserve(n);
    for (size_t i = 0; i < n; ++i)
      xs.emplace_back(codec<T>::decode(r));
    return xs;
  }
};

namespace detail {

template <class Map>
struct map_codec {
  using key_type = typename Map::key_type;
  using mapped_type = typename Map::mapped_type;
  static void encode(byte_writer& w, const Map& xs) {
    w.put_varint(xs.size());
    for (auto& [k, v] : xs) {
      codec<key_type>::encode(w, k);
      codec<mapped_type>::encode(w, v);
    }
  }
  static Map decode(byte_reader& r) {
    auto n = r.get_count();
    Map xs;
    for (size_t i = 0; i < n; ++i) {
      auto k = codec<key_type>::decode(r);
      auto v = codec<mapped_type>::decode(r);
      xs.emplace(std::move(k), std::move(v));
    }
    return xs;
  }
};

} // namespace detail

template <class K, class V, class C, class A>
struct codec<std::map<K, V, C, A>> : detail::map_codec<std::map<K, V, C, A>> {};

template <class K, class V, class H, class E, class A>
struct codec<std::unordered_map<K, V, H, E, A>>
  : detail::map_codec<std::unordered_map<K, V, H, E, A>> {};

// -- user types through inspect -----------------------------------------------

namespace detail {

/// Drives a user's inspect() to encode: fields in order, annotations skipped
/// (save callbacks run first, as CAF's serializers run them).
struct encode_inspector {
  using result_type = void;
  static constexpr bool reads_state = true;
  static constexpr bool writes_state = false;
  byte_writer& w;

  template <class... Ts>
  void operator()(Ts&&... xs) {
    (apply(xs), ...);
  }

private:
  template <class T>
  void apply(T& x) {
    using value_type = std::decay_t<T>;
    if constexpr (caf::meta::is_save_callback<value_type>::value) {
      x.fun();
    } else if constexpr (caf::meta::is_annotation<value_type>::value) {
      // type names, hex formatting and the like carry no data
    } else {
      codec<value_type>::encode(w, x);
    }
  }
};

/// Drives a user's inspect() to decode: assigns fields in order, then runs
/// load callbacks where they stand.
struct decode_inspector {
  using result_type = void;
  static constexpr bool reads_state = false;
  static constexpr bool writes_state = true;
  byte_reader& r;

  template <class... Ts>
  void operator()(Ts&&... xs) {
    (apply(xs), ...);
  }

private:
  template <class T>
  void apply(T& x) {
    using value_type = std::decay_t<T>;
    if constexpr (caf::meta::is_load_callback<value_type>::value) {
      if (auto err = x.fun())
        throw decode_error("a load callback refused the record");
    } else if constexpr (caf::meta::is_annotation<value_type>::value) {
      // nop
    } else {
      x = codec<value_type>::decode(r);
    }
  }
};

} // namespace detail

template <class T>
struct codec<T, std::enable_if_t<detail::is_inspectable<T>::value>> {
  static void encode(byte_writer& w, const T& x) {
    detail::encode_inspector f{w};
    inspect(f, const_cast<T&>(x));
  }
  static T decode(byte_reader& r) {
    static_assert(std::is_default_constructible_v<T>,
                  "inspectable record types need a default constructor");
    T x;
    detail::decode_inspector f{r};
    inspect(f, x);
    return x;
  }
};

} // namespace sluice
