#include <catch2/catch.hpp>

#include <chrono>

#include "runtime/cluster/node_identity.hpp"
#include "runtime/cluster/restart_budget.hpp"
#include "runtime/supervisor.hpp"

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

namespace {

/// waitpid() statuses, as the supervisor sees them.
int exited(int code) {
  return (code & 0xff) << 8;
}

int killed(int sig) {
  return sig & 0x7f;
}

} // namespace

TEST_CASE("a supervised driver that keeps crashing at start waits longer each "
          "time, up to 10 s",
          "[supervision]") {
  restart_delays d;
  CHECK(d.next(killed(9), 100ms) == 500ms);
  CHECK(d.next(exited(1), 100ms) == 1000ms);
  CHECK(d.next(exited(1), 100ms) == 2000ms);
  CHECK(d.next(exited(1), 100ms) == 4000ms);
  CHECK(d.next(exited(1), 100ms) == 8000ms);
  CHECK(d.next(exited(1), 100ms) == 10000ms);
  CHECK(d.next(exited(1), 100ms) == 10000ms);
}

TEST_CASE("a supervised driver that ran a while before it was killed is "
          "restarted after the shortest back-off, however often it happens",
          "[supervision]") {
  restart_delays d;
  for (int i = 0; i < 6; ++i)
    CHECK(d.next(killed(9), 5s) == 500ms);
}

TEST_CASE("a supervised driver that exits to recover lost state is restarted "
          "after 200 ms and does not lengthen the crash back-off",
          "[supervision]") {
  restart_delays d;
  CHECK(d.next(killed(9), 100ms) == 500ms);
  CHECK(d.next(exited(exit_restart_to_recover), 2s) == 200ms);
  CHECK(d.next(exited(exit_restart_to_recover), 2s) == 200ms);
  CHECK(d.next(killed(9), 100ms) == 1000ms);
  // One that asks at once after its start may be failing its recovery:
  // the crash back-off applies.
  CHECK(d.next(exited(exit_restart_to_recover), 100ms) == 2000ms);
}
