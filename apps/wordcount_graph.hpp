#pragma once

// The word count application's graph, shared by the wordcount binary and the
// benchmark so both measure the same thing.

#include <string>
#include <string_view>

#include "runtime/streaming_context.hpp"

namespace sluice::apps {

/// The options of the word count apps: --source=URI and --output=DIR.
struct io_options {
  std::string source;
  std::string output;

  /// Declares both on `cfg`; returns the adder for the app's own options.
  caf::config_option_adder add_to(config& cfg);

  /// The input stream --source names; throws std::invalid_argument when an
  /// option is missing or the URI is bad.
  dstream<std::string> lines(streaming_context& ssc) const;
};

/// Builds the input stream a --source URI names: socket://host:port,
/// dir:///abs/path or gen://RATE. Throws std::invalid_argument naming the
/// URI and what is wrong with it.
dstream<std::string> source_from_uri(streaming_context& ssc,
                                     const std::string& uri);

/// Splits on ASCII whitespace; emits each word (no per-line container).
inline void split_words(std::string&& line, emitter<std::string>& emit) {
  std::string_view rest{line};
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\t' || rest[i] == '\r'))
      ++i;
    auto begin = i;
    while (i < rest.size() && rest[i] != ' ' && rest[i] != '\t' && rest[i] != '\r')
      ++i;
    if (i > begin)
      emit.emplace(rest.substr(begin, i - begin));
  }
}

/// words -> (word, count) of each batch.
inline dstream<std::pair<std::string, int64_t>>
word_counts(const dstream<std::string>& lines) {
  return lines.flat_map<std::string>(split_words)
    .map([](std::string w) { return std::pair<std::string, int64_t>{std::move(w), 1}; })
    .reduce_by_key([](int64_t a, int64_t b) { return a + b; });
}

} // namespace sluice::apps
