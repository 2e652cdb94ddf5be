#include <catch2/catch.hpp>

#include <chrono>

#include "runtime/cluster/node_identity.hpp"
#include "runtime/cluster/restart_budget.hpp"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

const restart_budget::time_point t0 = restart_budget::time_point{} + 1h;

} // namespace

TEST_CASE("a restart budget allows its restarts with doubling delays",
          "[supervision]") {
  restart_budget b{4, 60s, 100ms, 1s};
  CHECK(b.on_crash(t0) == 100ms);
  CHECK(b.on_crash(t0 + 1s) == 200ms);
  CHECK(b.on_crash(t0 + 2s) == 400ms);
  CHECK(b.on_crash(t0 + 3s) == 800ms);
  CHECK(b.recent() == 4);
}

TEST_CASE("a restart budget caps the delay", "[supervision]") {
  restart_budget b{10, 60s, 300ms, 1s};
  b.on_crash(t0);
  b.on_crash(t0);
  CHECK(b.on_crash(t0) == 1s);
  CHECK(b.on_crash(t0) == 1s);
}

TEST_CASE("one crash more than the budget within the window spends it",
          "[supervision]") {
  restart_budget b{2, 60s, 10ms, 1s};
  CHECK(b.on_crash(t0));
  CHECK(b.on_crash(t0 + 10s));
  CHECK_FALSE(b.on_crash(t0 + 59s));
}

TEST_CASE("crashes older than the window no longer count", "[supervision]") {
  restart_budget b{2, 60s, 10ms, 1s};
  CHECK(b.on_crash(t0));
  CHECK(b.on_crash(t0 + 30s));
  // The first crash left the window: two in it, within budget, and the
  // delay follows the crashes still counted.
  CHECK(b.on_crash(t0 + 61s) == 20ms);
  CHECK(b.recent() == 2);
  CHECK(b.on_crash(t0 + 200s) == 10ms);
}

TEST_CASE("a budget of zero restarts refuses the first crash", "[supervision]") {
  restart_budget b{0, 60s, 10ms, 1s};
  CHECK_FALSE(b.on_crash(t0));
}

TEST_CASE("a node identity names each new incarnation after its base id",
          "[supervision]") {
  node_identity id{"worker-h-42-7"};
  CHECK(id.current() == "worker-h-42-7");
  CHECK(id.incarnation() == 1);
  CHECK(id.next_incarnation() == "worker-h-42-7-i2");
  CHECK(id.current() == "worker-h-42-7-i2");
  CHECK(id.next_incarnation() == "worker-h-42-7-i3");
  CHECK(id.incarnation() == 3);
  CHECK(id.base() == "worker-h-42-7");
}
