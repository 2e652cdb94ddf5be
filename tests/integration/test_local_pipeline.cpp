#include <catch2/catch.hpp>

#include "apps/wordcount_graph.hpp"
#include "tests/support/local_harness.hpp"

using namespace sluice;
using namespace sluice::test;

namespace {

using counts = std::vector<std::pair<std::string, int64_t>>;

} // namespace

TEST_CASE("word count runs across two local workers batch by batch", "[integration]") {
  local_harness h{2};
  auto lines = h.ssc().queue_stream<std::string>(
    {{"a b a", "c a"}, {}, {"b b", "b"}});
  auto sink = h.collect(apps::word_counts(lines));
  h.start();
  auto b1 = h.next_batch();
  CHECK(b1.records == 2);
  CHECK(b1.failed_jobs == 0);
  CHECK(sink->sorted(1000) == counts{{"a", 3}, {"b", 1}, {"c", 1}});
  auto b2 = h.next_batch();
  CHECK(b2.records == 0);
  CHECK(sink->sorted(2000).empty());
  h.next_batch();
  CHECK(sink->sorted(3000) == counts{{"b", 3}});
}
