// topk: the k most frequent words over the last 30 s, every 5 s.
//
//   topk --source=URI --output=DIR --checkpoint=DIR [--k=10]
//        [--local=N | --role=driver --listen=host:port
//                   | --role=worker --driver=host:port]
//        [--batch-interval=1s] [--duration=SECONDS] [--sluice.*=...]
//
// Counts are kept incrementally (reduce_by_key_and_window with an inverse:
// add the entering batch, subtract the leaving one; words that fall to 0
// are dropped). Every 5 s, DIR/<batch time ms>/part-00000 lists the top k
// as "word<TAB>count" lines, most frequent first, ties by word. The batch
// interval must divide 5 s.

#include <algorithm>
#include <chrono>
#include <string>

#include "apps/wordcount_graph.hpp"

namespace {

using word_count = std::pair<std::string, int64_t>;

/// Orders by count (descending), then word.
bool before(const word_count& a, const word_count& b) {
  return a.second != b.second ? a.second > b.second : a.first < b.first;
}

std::vector<word_count> top(std::vector<word_count>&& xs, size_t k) {
  auto n = std::min(k, xs.size());
  std::partial_sort(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(n),
                    xs.end(), before);
  xs.resize(n);
  return std::move(xs);
}

} // namespace

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  sluice::apps::io_options io;
  int64_t k = 10;
  return sluice::run(
    argc, argv,
    [&](sluice::config& cfg) {
      io.add_to(cfg).add(k, "k", "how many words to list (10)");
    },
    [&](sluice::streaming_context& ssc) {
      auto lines = io.lines(ssc);
      if (k <= 0)
        throw std::invalid_argument("--k must be positive");
      auto n = static_cast<size_t>(k);
      lines.flat_map<std::string>(sluice::apps::split_words)
        .map([](std::string w) { return word_count{std::move(w), 1}; })
        .reduce_by_key_and_window(
          [](int64_t a, int64_t b) { return a + b; },
          [](int64_t a, int64_t b) { return a - b; }, 30s, 5s, 0,
          [](const word_count& wc) { return wc.second > 0; })
        .name("window-counts")
        .map_partitions([n](std::vector<word_count>&& xs) { return top(std::move(xs), n); })
        .repartition(1)
        .map_partitions([n](std::vector<word_count>&& xs) { return top(std::move(xs), n); })
        .save_as_text_files_in(io.output)
        .name("top-words");
    });
}
