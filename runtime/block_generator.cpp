#include "runtime/block_generator.hpp"

namespace sluice {

block_generator::block_generator(uint64_t max_rate)
  : max_rate_(max_rate), window_start_(clock_type::now()) {
}

void block_generator::push_encoded(std::string_view record) {
  std::unique_lock<std::mutex> guard{mtx_};
  throttle(guard);
  builder_.add_encoded(record);
}

std::optional<cut_block> block_generator::cut() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (builder_.empty())
    return std::nullopt;
  cut_block result;
  result.records = builder_.records();
  result.raw_bytes = builder_.bytes();
  result.bytes = builder_.finish();
  return result;
}

void block_generator::set_max_rate(uint64_t rate) {
  std::lock_guard<std::mutex> guard{mtx_};
  max_rate_ = rate;
  cv_.notify_all();
}

void block_generator::interrupt() {
  std::lock_guard<std::mutex> guard{mtx_};
  interrupted_ = true;
  cv_.notify_all();
}

uint64_t block_generator::buffered_records() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return builder_.records();
}

void block_generator::throttle(std::unique_lock<std::mutex>& guard) {
  // A one-second window: at most max_rate_ records per window. Waiting here
  // is the rate limit itself (the source thread pauses), not synchronisation.
  for (;;) {
    if (max_rate_ == 0 || interrupted_)
      return;
    auto now = clock_type::now();
    if (now - window_start_ >= std::chrono::seconds{1}) {
      window_start_ = now;
      window_count_ = 0;
    }
    if (window_count_ < max_rate_) {
      ++window_count_;
      return;
    }
    cv_.wait_until(guard, window_start_ + std::chrono::seconds{1});
  }
}

} // namespace sluice
