// wordcount: counts the words of each batch.
//
//   wordcount --source=URI --output=DIR
//             [--local=N | --role=driver --listen=host:port
//                        | --role=worker --driver=host:port]
//             [--batch-interval=500ms] [--duration=SECONDS] [--sluice.*=...]
//             [--stateful --checkpoint=DIR]
//
// URI: socket://host:port, dir:///abs/path or gen://RATE. Every batch writes
// DIR/<batch time ms>/part-NNNNN files of "word<TAB>count" lines: the counts
// of the batch, or with --stateful the running totals since the start
// (update_state_by_key, which needs --checkpoint=DIR). Start every process
// of a cluster with the same options plus its role.

#include <iostream>
#include <string>

#include "apps/wordcount_graph.hpp"

int main(int argc, char** argv) {
  sluice::apps::io_options io;
  bool stateful = false;
  return sluice::run(
    argc, argv,
    [&](sluice::config& cfg) {
      io.add_to(cfg).add(stateful, "stateful",
                         "write running totals since the start (needs --checkpoint)");
    },
    [&](sluice::streaming_context& ssc) {
      auto lines = io.lines(ssc);
      auto counts = sluice::apps::word_counts(lines);
      if (stateful)
        counts = counts
                   .update_state_by_key<int64_t>(
                     [](const std::vector<int64_t>& xs, std::optional<int64_t> total) {
                       auto sum = total.value_or(0);
                       for (auto x : xs)
                         sum += x;
                       return std::optional<int64_t>{sum};
                     })
                   .name("running-totals");
      counts.save_as_text_files_in(io.output).name("word-counts");
    });
}
