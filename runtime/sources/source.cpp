#include "runtime/sources/source.hpp"

namespace sluice {

void stop_signal::request_stop() {
  {
    // Setting the flag under the mutex closes the window between a waiter's
    // predicate check and its sleep, so a stop is never missed.
    std::lock_guard<std::mutex> guard{mtx_};
    stopped_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

bool stop_signal::wait_for(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> guard{mtx_};
  cv_.wait_for(guard, d, [this] { return stop_requested(); });
  return stop_requested();
}

source_reporter::~source_reporter() {
  // nop
}

source::~source() {
  // nop
}

} // namespace sluice
