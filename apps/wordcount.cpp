// wordcount: counts the words of each batch.
//
//   wordcount --source=URI --output=DIR
//             [--local=N | --role=driver --listen=host:port
//                        | --role=worker --driver=host:port]
//             [--batch-interval=500ms] [--duration=SECONDS] [--sluice.*=...]
//             [--stateful --checkpoint=DIR [--state-checkpoint-interval=D]]
//
// URI: socket://host:port, dir:///abs/path or gen://RATE. Every batch writes
// DIR/<batch time ms>/part-NNNNN files of "word<TAB>count" lines: the counts
// of the batch, or with --stateful the running totals since the start
// (update_state_by_key, which needs --checkpoint=DIR), written to a data
// checkpoint every --state-checkpoint-interval (default: the smallest
// multiple of the batch interval of at least 10 s). Start every process of
// a cluster with the same options plus its role.

#include <chrono>
#include <iostream>
#include <string>

#include "apps/wordcount_graph.hpp"

int main(int argc, char** argv) {
  sluice::apps::io_options io;
  bool stateful = false;
  caf::timespan state_interval{0};
  return sluice::run(
    argc, argv,
    [&](sluice::config& cfg) {
      io.add_to(cfg)
        .add(stateful, "stateful",
             "write running totals since the start (needs --checkpoint)")
        .add(state_interval, "state-checkpoint-interval",
             "--stateful: how often the totals go to a data checkpoint, a "
             "multiple of the batch interval (default: the first multiple "
             "of at least 10 s)");
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
      if (stateful && state_interval.count() > 0)
        counts = counts.checkpoint(
          std::chrono::duration_cast<std::chrono::milliseconds>(state_interval));
      counts.save_as_text_files_in(io.output).name("word-counts");
    });
}
