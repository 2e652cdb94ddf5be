#pragma once

#include <charconv>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice {

/// How records look in text outputs (print, save_as_text_files): strings as
/// they are, numbers in their shortest exact form, pairs and tuples as
/// tab-separated fields ("word<TAB>count"), vectors as [a, b], an empty
/// optional as nothing. Specialize text_format<T> for other types.
template <class T, class = void>
struct text_format;

template <class T>
void append_text(std::string& out, const T& x) {
  text_format<T>::append(out, x);
}

template <class T>
std::string to_text(const T& x) {
  std::string out;
  append_text(out, x);
  return out;
}

template <>
struct text_format<std::string> {
  static void append(std::string& out, const std::string& x) {
    out += x;
  }
};

template <>
struct text_format<bool> {
  static void append(std::string& out, bool x) {
    out += x ? "true" : "false";
  }
};

template <class T>
struct text_format<T, std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>>> {
  static void append(std::string& out, T x) {
    char tmp[64];
    auto [end, ec] = std::to_chars(tmp, tmp + sizeof(tmp), x);
    out.append(tmp, end);
  }
};

template <class A, class B>
struct text_format<std::pair<A, B>> {
  static void append(std::string& out, const std::pair<A, B>& x) {
    append_text(out, x.first);
    out += '\t';
    append_text(out, x.second);
  }
};

template <class... Ts>
struct text_format<std::tuple<Ts...>> {
  static void append(std::string& out, const std::tuple<Ts...>& x) {
    bool first = true;
    std::apply(
      [&](const auto&... xs) {
        ((out += (first ? "" : "\t"), first = false, append_text(out, xs)), ...);
      },
      x);
  }
};

template <class T>
struct text_format<std::vector<T>> {
  static void append(std::string& out, const std::vector<T>& xs) {
    out += '[';
    for (size_t i = 0; i < xs.size(); ++i) {
      if (i > 0)
        out += ", ";
      append_text(out, xs[i]);
    }
    out += ']';
  }
};

template <class T>
struct text_format<std::optional<T>> {
  static void append(std::string& out, const std::optional<T>& x) {
    if (x)
      append_text(out, *x);
  }
};

} // namespace sluice
