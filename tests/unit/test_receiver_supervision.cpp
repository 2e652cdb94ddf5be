#include <catch2/catch.hpp>

#include "runtime/cluster/receiver_supervision.hpp"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

restart_policy policy(uint32_t max_restarts = 4) {
  restart_policy p;
  p.delay = 200ms;
  p.max_delay = 1000ms;
  p.max_restarts = max_restarts;
  p.stable = 30000ms;
  return p;
}

} // namespace

TEST_CASE("the first restart of a lost receiver waits the restart delay",
          "[unit][supervision]") {
  receiver_supervision sup{policy()};
  sup.started(7, 0);
  auto d = sup.failed(7, "a", 100);
  CHECK_FALSE(d.give_up);
  CHECK(d.failures == 1);
  CHECK(d.delay == 200ms);
}

TEST_CASE("consecutive failures double the delay up to its maximum",
          "[unit][supervision]") {
  receiver_supervision sup{policy(10)};
  std::vector<std::chrono::milliseconds> delays;
  for (int i = 0; i < 5; ++i) {
    sup.started(1, i * 10);
    delays.push_back(sup.failed(1, "a", i * 10 + 5).delay);
  }
  CHECK(delays == std::vector<std::chrono::milliseconds>{200ms, 400ms, 800ms,
                                                         1000ms, 1000ms});
}

TEST_CASE("a failure past the restart budget gives the stream up for good",
          "[unit][supervision]") {
  receiver_supervision sup{policy(2)};
  CHECK_FALSE(sup.failed(3, "a", 0).give_up);
  CHECK_FALSE(sup.failed(3, "b", 1).give_up);
  auto d = sup.failed(3, "a", 2);
  CHECK(d.give_up);
  CHECK(d.failures == 3);
  CHECK(sup.given_up(3));
  // Stays given up, and other streams are not affected.
  sup.started(3, 3);
  CHECK(sup.failed(3, "c", 4).give_up);
  CHECK_FALSE(sup.given_up(4));
  CHECK_FALSE(sup.failed(4, "a", 5).give_up);
}

TEST_CASE("a budget of zero restarts gives up at the first failure",
          "[unit][supervision]") {
  receiver_supervision sup{policy(0)};
  CHECK(sup.failed(1, "a", 0).give_up);
}

TEST_CASE("a receiver that ran stably before failing starts a fresh count",
          "[unit][supervision]") {
  receiver_supervision sup{policy(2)};
  sup.failed(1, "a", 0);
  sup.failed(1, "a", 10);
  sup.started(1, 20);
  auto d = sup.failed(1, "b", 20 + 30000);
  CHECK_FALSE(d.give_up);
  CHECK(d.failures == 1);
  CHECK(d.delay == 200ms);
}

TEST_CASE("a failure right after a restart adds to the streak",
          "[unit][supervision]") {
  receiver_supervision sup{policy(5)};
  sup.failed(1, "a", 0);
  sup.started(1, 300);
  auto d = sup.failed(1, "b", 400);
  CHECK(d.failures == 2);
  CHECK(d.delay == 400ms);
}

TEST_CASE("placement picks the node with the fewest receivers and breaks ties by name",
          "[unit][supervision]") {
  receiver_supervision sup;
  CHECK(sup.pick(1, {{"b", 1}, {"a", 1}, {"c", 0}}) == "c");
  CHECK(sup.pick(1, {{"b", 0}, {"a", 0}}) == "a");
  CHECK_FALSE(sup.pick(1, {}).has_value());
}

TEST_CASE("a restart avoids the node of the last failure while another is live",
          "[unit][supervision]") {
  receiver_supervision sup{policy()};
  sup.started(1, 0);
  sup.failed(1, "a", 10);
  // "a" has the fewest receivers but is where the receiver just failed.
  CHECK(sup.pick(1, {{"a", 0}, {"b", 3}}) == "b");
  // Alone, it is used anyway: a restart there beats no receiver.
  CHECK(sup.pick(1, {{"a", 0}}) == "a");
  // Other streams are not steered away from it.
  CHECK(sup.pick(2, {{"a", 0}, {"b", 3}}) == "a");
}
