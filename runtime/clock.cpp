#include "runtime/clock.hpp"

#include <caf/send.hpp>

namespace sluice {

clock::~clock() = default;

time_ms system_clock::now() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(std::chrono::system_clock::now()
                                       .time_since_epoch())
    .count();
}

void system_clock::schedule(time_ms at, caf::actor target,
                            caf::message content) {
  auto delay = std::max<time_ms>(0, at - now());
  caf::delayed_anon_send(target, std::chrono::milliseconds{delay},
                         std::move(content));
}

manual_clock::manual_clock(time_ms start) : now_(start) {
}

time_ms manual_clock::now() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return now_;
}

void manual_clock::schedule(time_ms at, caf::actor target,
                            caf::message content) {
  std::unique_lock<std::mutex> guard{mtx_};
  if (at <= now_) {
    guard.unlock();
    caf::anon_send(target, std::move(content));
    return;
  }
  pending_.emplace(at, std::make_pair(std::move(target), std::move(content)));
}

void manual_clock::advance_to(time_ms t) {
  std::vector<std::pair<caf::actor, caf::message>> due;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (t > now_)
      now_ = t;
    auto end = pending_.upper_bound(now_);
    for (auto i = pending_.begin(); i != end; ++i)
      due.push_back(std::move(i->second));
    pending_.erase(pending_.begin(), end);
  }
  for (auto& [target, content] : due)
    caf::anon_send(target, std::move(content));
}

void manual_clock::advance(std::chrono::milliseconds d) {
  advance_to(now() + d.count());
}

size_t manual_clock::pending() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return pending_.size();
}

} // namespace sluice
