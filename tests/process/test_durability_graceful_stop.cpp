// Durability of a graceful stop (docs/recovery.md), with real processes:
// wordcount over a directory stops on SIGTERM while files keep arriving;
// every file from before the signal is counted exactly once, and a restart
// has nothing left to re-run.

#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include <signal.h>

#include "tests/process/cluster.hpp"
#include "tests/process/durability.hpp"

using namespace sluice::test;
namespace fs = std::filesystem;

// -- graceful stop ----------------------------------------------------------------------

TEST_CASE("a graceful stop while files keep arriving counts every file that "
          "arrived before SIGTERM and a restart re-runs no batch",
          "[process][recovery]") {
  local_job job{{"--sluice.stop-gracefully-on-shutdown=true"}};
  auto& p = job.start();
  for (int i = 0; i < 3; ++i)
    job.add_file();
  REQUIRE(job.await_exact());
  job.add_file();
  job.add_file();
  p.signal(SIGTERM);
  auto before_stop = job.files.size();
  // Files go on arriving while the driver stops, one per batch it completes.
  while (p.running() && job.files.size() < before_stop + 10) {
    job.add_file();
    auto seen = completed_batches(p);
    wait_until([&] { return !p.running() || completed_batches(p) > seen; },
               std::chrono::seconds{5});
  }
  auto status = p.wait();
  INFO(job.logs());
  CHECK(exited_with(status, 0));
  // The final totals are those of the files up to some point at or after
  // the SIGTERM, in arrival order: nothing from before it is missing and
  // no file is counted in part or twice.
  auto final_totals = job.newest_totals();
  std::optional<size_t> counted;
  word_totals prefix;
  for (size_t n = 0; n <= job.files.size(); ++n) {
    if (prefix == final_totals)
      counted = n;
    if (n < job.files.size())
      for (auto& [w, c] : job.files[n])
        prefix[w] += c;
  }
  REQUIRE(counted);
  CHECK(*counted >= before_stop);
  // The restart finds nothing left to do for the batches before the stop.
  auto& q = job.start();
  REQUIRE(job.await([&] { return occurrences(q.err(), "recovered from ") > 0; }));
  CHECK_THAT(q.err(), Catch::Contains(": 0 batches recomputed for state, 0 "
                                      "pending batches re-run"));
  job.add_file();
  REQUIRE(job.await_exact());
  q.signal(SIGTERM);
  CHECK(exited_with(q.wait(), 0));
  CHECK(job.newest_totals() == job.expected);
}
