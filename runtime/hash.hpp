#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "runtime/codec.hpp"

namespace sluice {

/// A hash of bytes that is the same in every process and build: shuffles
/// assign keys to partitions with it, so the driver, every worker and a
/// re-run after a restart agree on where a key goes. (FNV-1a with a final
/// avalanche mix; speed matters more than cryptographic strength here.)
inline uint64_t stable_hash(std::string_view bytes) noexcept {
  uint64_t h = 14695981039346656037ull;
  for (auto c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

namespace detail {

template <class T, class = void>
struct has_std_hash : std::false_type {};

template <class T>
struct has_std_hash<T, std::void_t<decltype(std::hash<T>{}(std::declval<const T&>()))>>
  : std::true_type {};

inline size_t hash_combine(size_t seed, size_t h) noexcept {
  return seed ^ (h + 0x9e3779b97f4a7c15ull + (seed << 6) + (seed >> 2));
}

} // namespace detail

/// The in-memory hash used by keyed operators' hash tables (process-local,
/// unlike stable_hash). Uses std::hash where it exists, combines members of
/// pairs and tuples, and falls back to hashing the encoded record.
template <class T, class = void>
struct key_hash {
  size_t operator()(const T& x) const {
    if constexpr (detail::has_std_hash<T>::value)
      return std::hash<T>{}(x);
    else
      return stable_hash(encode_to_string(x));
  }
};

template <class A, class B>
struct key_hash<std::pair<A, B>> {
  size_t operator()(const std::pair<A, B>& x) const {
    return detail::hash_combine(key_hash<A>{}(x.first), key_hash<B>{}(x.second));
  }
};

template <class... Ts>
struct key_hash<std::tuple<Ts...>> {
  size_t operator()(const std::tuple<Ts...>& x) const {
    size_t seed = 0;
    std::apply(
      [&](const auto&... xs) {
        ((seed = detail::hash_combine(seed, key_hash<std::decay_t<decltype(xs)>>{}(xs))),
         ...);
      },
      x);
    return seed;
  }
};

} // namespace sluice
