#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/make_message.hpp>
#include <caf/scoped_actor.hpp>

#include "runtime/clock.hpp"
#include "runtime/config.hpp"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

struct clock_fixture {
  config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  caf::actor target() {
    return caf::actor_cast<caf::actor>(self);
  }

  /// Messages already in the scoped actor's mailbox. Delivery by the manual
  /// clock is a synchronous enqueue, so this is exact once a call returned.
  size_t queued() {
    return self->mailbox().size();
  }

  /// Receives the next string message; fails the test after 5 s.
  std::string next() {
    std::string result;
    bool timed_out = false;
    self->receive([&](const std::string& x) { result = x; },
                  caf::after(std::chrono::seconds(5)) >> [&] { timed_out = true; });
    if (timed_out)
      FAIL("no message within 5 s");
    return result;
  }
};

caf::message text(std::string x) {
  return caf::make_message(std::move(x));
}

} // namespace

TEST_CASE("a manual clock starts where it is told and only moves forward",
          "[clock]") {
  manual_clock clk{1000};
  CHECK(clk.now() == 1000);
  clk.advance_to(1500);
  CHECK(clk.now() == 1500);
  clk.advance_to(1200); // never backwards
  CHECK(clk.now() == 1500);
  clk.advance(250ms);
  CHECK(clk.now() == 1750);
  CHECK(clk.pending() == 0);
  manual_clock zero;
  CHECK(zero.now() == 0);
}

TEST_CASE("a manual clock delivers a wake-up only once advanced to its time",
          "[clock]") {
  clock_fixture f;
  manual_clock clk{100};
  clk.schedule(200, f.target(), text("at 200"));
  CHECK(clk.pending() == 1);
  CHECK(f.queued() == 0);
  clk.advance_to(150);
  CHECK(clk.pending() == 1);
  CHECK(f.queued() == 0);
  clk.advance_to(199);
  CHECK(f.queued() == 0);
  clk.advance_to(200); // due exactly at its time
  CHECK(clk.pending() == 0);
  CHECK(f.queued() == 1);
  CHECK(f.next() == "at 200");
  // Nothing is delivered twice.
  clk.advance_to(10000);
  CHECK(f.queued() == 0);
}

TEST_CASE("a manual clock delivers due wake-ups in time order", "[clock]") {
  clock_fixture f;
  manual_clock clk{0};
  clk.schedule(400, f.target(), text("d"));
  clk.schedule(100, f.target(), text("a"));
  clk.schedule(300, f.target(), text("c"));
  clk.schedule(200, f.target(), text("b1"));
  clk.schedule(200, f.target(), text("b2")); // same time: scheduling order
  CHECK(clk.pending() == 5);
  clk.advance_to(350);
  CHECK(clk.pending() == 1);
  CHECK(f.queued() == 4);
  std::vector<std::string> got;
  for (int i = 0; i < 4; ++i)
    got.push_back(f.next());
  CHECK(got == std::vector<std::string>{"a", "b1", "b2", "c"});
  CHECK(f.queued() == 0);
  clk.advance(50ms);
  CHECK(clk.now() == 400);
  CHECK(clk.pending() == 0);
  CHECK(f.next() == "d");
}

TEST_CASE("a wake-up scheduled in the past or present is delivered at once",
          "[clock]") {
  clock_fixture f;
  manual_clock clk{500};
  clk.schedule(100, f.target(), text("past"));
  CHECK(clk.pending() == 0);
  CHECK(f.queued() == 1);
  CHECK(f.next() == "past");
  clk.schedule(500, f.target(), text("now"));
  CHECK(clk.pending() == 0);
  CHECK(f.next() == "now");
  CHECK(clk.now() == 500);
}

TEST_CASE("a manual clock delivers to each wake-up's own target", "[clock]") {
  clock_fixture f;
  caf::scoped_actor other{f.sys};
  manual_clock clk{0};
  clk.schedule(10, caf::actor_cast<caf::actor>(other), text("for other"));
  clk.schedule(20, f.target(), text("for self"));
  clk.advance_to(20);
  CHECK(f.next() == "for self");
  std::string got;
  bool timed_out = false;
  other->receive([&](const std::string& x) { got = x; },
                 caf::after(std::chrono::seconds(5)) >> [&] { timed_out = true; });
  CHECK_FALSE(timed_out);
  CHECK(got == "for other");
}

TEST_CASE("a manual clock counts wake-ups scheduled from several threads",
          "[clock]") {
  clock_fixture f;
  manual_clock clk{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i)
        clk.schedule(1 + t * 50 + i, f.target(), text(std::to_string(t * 50 + i)));
    });
  for (auto& t : threads)
    t.join();
  CHECK(clk.pending() == 200);
  clk.advance_to(200);
  CHECK(clk.pending() == 0);
  bool ordered = true;
  for (int i = 0; i < 200; ++i)
    if (f.next() != std::to_string(i))
      ordered = false;
  CHECK(ordered);
}

TEST_CASE("the system clock delivers a wake-up that is already due", "[clock]") {
  clock_fixture f;
  system_clock clk;
  auto now = clk.now();
  CHECK(now > 1600000000000); // milliseconds since the epoch, after 2020
  clk.schedule(now - 1000, f.target(), text("due"));
  CHECK(f.next() == "due");
}
