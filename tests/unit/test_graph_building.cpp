// Building a DStream graph (operator ids, partition counts, a graph without
// outputs) and how long a batch's inputs are remembered, on a real
// local-mode cluster (driver + 2 in-process workers) driven by a manual
// clock: h.next_batch() runs exactly one batch.

#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/local_harness.hpp"
#include "tests/unit/operator_tests.hpp"

using namespace sluice;
using namespace sluice::test;

// -- building the graph ------------------------------------------------------------

TEST_CASE("naming two operators with the same id throws naming the id",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto xs = ssc.queue_stream<int64_t>({{1}});
  auto m = xs.map([](int64_t x) { return x + 1; });
  m.name("dup-id");
  CHECK(m.node()->id() == "dup-id");
  auto other = xs.filter([](const int64_t&) { return true; });
  try {
    other.name("dup-id");
    FAIL("a duplicate id was accepted");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), Catch::Contains("dup-id"));
  }
  // The refused rename left the operator's id alone.
  CHECK(other.node()->id() == "filter-" + std::to_string(other.node()->index()));
  // Renaming to its own id is fine; outputs share the id space.
  CHECK_NOTHROW(m.name("dup-id"));
  auto out = m.foreach_batch([](time_ms, std::vector<std::vector<int64_t>>&) {});
  CHECK_THROWS_AS(out.name("dup-id"), std::invalid_argument);
  CHECK_THROWS_AS(out.name(""), std::invalid_argument);
  out.name("out-id");
  CHECK_THROWS_WITH(other.name("out-id"), Catch::Contains("out-id"));
  h.start();
  // No renames once the graph runs.
  CHECK_THROWS_AS(other.name("late-id"), std::invalid_argument);
}

TEST_CASE("repartition and keyed shuffles refuse a partition count of 0",
          "[operators]") {
  local_harness h{2};
  auto xs = h.ssc().queue_stream<int64_t>({{1}});
  auto nodes_before = h.ssc().graph().size();
  CHECK_THROWS_AS(xs.repartition(0), std::invalid_argument);
  CHECK_THROWS_WITH(xs.repartition(0), Catch::Contains("repartition"));
  CHECK_THROWS_AS(xs.repartition(100001), std::invalid_argument);
  CHECK(h.ssc().graph().size() == nodes_before);
}

TEST_CASE("starting a context whose graph has no output fails and says why",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto xs = ssc.queue_stream<int64_t>({{1, 2}, {3}});
  auto doubled = xs.map([](int64_t x) { return x * 2; });
  auto err = ssc.start();
  REQUIRE(err);
  CHECK(err.code() == static_cast<uint8_t>(errc::bad_graph));
  CHECK_THAT(describe(err), Catch::Contains("output"));
  // Nothing was started: adding an output and starting again works.
  auto sink = h.collect(doubled);
  h.start();
  h.next_batch();
  CHECK(sink->sorted(1000) == ints{2, 4});
}

TEST_CASE("remember keeps the input blocks of recent batches and drops older ones",
          "[operators][remember]") {
  local_harness h{2};
  std::vector<std::vector<std::string>> batches(10, std::vector<std::string>{"x"});
  auto xs = h.ssc().queue_stream<std::string>(batches);
  h.collect(xs);
  h.ssc().remember(std::chrono::seconds{3});
  h.start();
  for (int i = 0; i < 8; ++i)
    h.next_batch();
  // One queued block per batch; batches 6, 7 and 8 are within 3 s of 8.
  CHECK(wait_until([&] { return h.ssc().stored_blocks().blocks == 3; }));
  CHECK_THROWS_AS(h.ssc().remember(std::chrono::seconds{1}), std::logic_error);
}

TEST_CASE("without remember a batch's input blocks are dropped when it completes",
          "[operators][remember]") {
  local_harness h{2};
  std::vector<std::vector<std::string>> batches(5, std::vector<std::string>{"x"});
  auto xs = h.ssc().queue_stream<std::string>(batches);
  h.collect(xs);
  h.start();
  for (int i = 0; i < 5; ++i)
    h.next_batch();
  CHECK(wait_until([&] { return h.ssc().stored_blocks().blocks == 0; }));
}
