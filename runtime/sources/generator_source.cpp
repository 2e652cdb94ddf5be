#include "runtime/sources/source.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>
#include <string>
#include <unordered_set>
#include <vector>

namespace sluice {

namespace {

constexpr size_t vocabulary_size = 1000;

constexpr uint64_t max_words_per_line = 12;

/// The longest pause between two refills of the token bucket: bounds how late
/// a stop is noticed at low rates.
constexpr std::chrono::milliseconds max_pause{100};

/// splitmix64: tiny, fast and statistically sound enough for test data. Its
/// output depends on nothing but the seed, so a seed reproduces a run on
/// every platform (std::uniform_int_distribution would not).
class splitmix64 {
public:
  explicit splitmix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    auto z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

  /// Uniform in [0, n) for n <= 2^32: multiply-shift instead of a modulo
  /// (no division, and no bias worth measuring for small n).
  uint64_t below(uint64_t n) { return ((next() >> 32) * n) >> 32; }

private:
  uint64_t state_;
};

/// A fixed vocabulary of pronounceable lowercase words, built from syllables
/// by a PRNG with a constant seed: the same words in every process, without a
/// table of a thousand literals.
const std::vector<std::string>& vocabulary() {
  static const std::vector<std::string> words = [] {
    static constexpr const char* onsets[] = {
        "b", "c", "d", "f", "g", "h", "j",  "k",  "l",  "m",  "n",  "p",
        "r", "s", "t", "v", "w", "z", "br", "ch", "st", "tr", "sh", "pl",
    };
    static constexpr const char* nuclei[] = {
        "a", "e", "i", "o", "u", "ai", "ou", "ea",
    };
    constexpr auto n_onsets = std::size(onsets);
    constexpr auto n_nuclei = std::size(nuclei);
    splitmix64 rng{0x736c75696365ull}; // "sluice"
    std::vector<std::string> result;
    std::unordered_set<std::string> taken;
    result.reserve(vocabulary_size);
    while (result.size() < vocabulary_size) {
      std::string word;
      auto syllables = 1 + rng.below(3);
      for (uint64_t i = 0; i < syllables; ++i) {
        word += onsets[rng.below(n_onsets)];
        word += nuclei[rng.below(n_nuclei)];
      }
      if (taken.insert(word).second)
        result.push_back(std::move(word));
    }
    return result;
  }();
  return words;
}

/// Generated text: see make_generator_source.
class generator_source final : public source {
public:
  generator_source(uint64_t rate, uint64_t seed) : rate_(rate), seed_(seed) {}

  std::string describe() const override {
    if (rate_ == 0)
      return "generator unthrottled";
    return "generator " + std::to_string(rate_) + " records/s";
  }

  void run(block_generator& out, stop_signal& stop,
           source_reporter& report) override {
    // Every run starts from the seed, so a run is repeatable on its own.
    splitmix64 rng{seed_};
    if (rate_ == 0) {
      report.started("generating records unthrottled");
      run_unthrottled(out, stop, rng);
    } else {
      report.started("generating " + std::to_string(rate_) + " records/s");
      run_paced(out, stop, rng);
    }
  }

private:
  /// Writes the next line into `line`, reusing its allocation.
  static void next_line(splitmix64& rng, std::string& line) {
    auto& words = vocabulary();
    line.clear();
    auto n = 1 + rng.below(max_words_per_line);
    for (uint64_t i = 0; i < n; ++i) {
      if (i > 0)
        line += ' ';
      line += words[rng.below(words.size())];
    }
  }

  static void run_unthrottled(block_generator& out, stop_signal& stop,
                              splitmix64& rng) {
    // The block generator's maximum rate, if any, throttles push().
    std::string line;
    while (!stop.stop_requested()) {
      next_line(rng, line);
      out.push(line);
    }
  }

  /// A token bucket refilled from the steady clock. It holds at most 100 ms
  /// of records, so output stays smooth and a stall (e.g. a push throttled by
  /// the receiver) is not followed by an unbounded burst.
  void run_paced(block_generator& out, stop_signal& stop,
                 splitmix64& rng) const {
    using clock = std::chrono::steady_clock;
    using fractional_seconds = std::chrono::duration<double>;
    const auto rate = static_cast<double>(rate_);
    const auto capacity = std::max(1.0, rate / 10.0);
    auto tokens = 1.0; // the first record goes out at once
    auto last_refill = clock::now();
    std::string line;
    while (!stop.stop_requested()) {
      auto now = clock::now();
      auto elapsed = fractional_seconds{now - last_refill}.count();
      tokens = std::min(capacity, tokens + elapsed * rate);
      last_refill = now;
      if (tokens < 1.0) {
        // Sleep until the next token is due, but never so long that a stop
        // goes unnoticed.
        auto due_ms = std::ceil((1.0 - tokens) * 1000.0 / rate);
        auto pause = std::chrono::milliseconds{static_cast<int64_t>(due_ms)};
        stop.wait_for(
            std::clamp(pause, std::chrono::milliseconds{1}, max_pause));
        continue;
      }
      auto n = static_cast<uint64_t>(tokens);
      tokens -= static_cast<double>(n);
      for (uint64_t i = 0; i < n && !stop.stop_requested(); ++i) {
        next_line(rng, line);
        out.push(line);
      }
    }
  }

  uint64_t rate_;
  uint64_t seed_;
};

} // namespace

source_ptr make_generator_source(uint64_t rate, uint64_t seed) {
  return std::make_unique<generator_source>(rate, seed);
}

} // namespace sluice
