#include "tests/support/local_harness.hpp"

namespace sluice::test {

struct local_harness::recorder : listener {
  std::mutex mtx;
  std::map<time_ms, batch_info> done;
  void on_batch_completed(const batch_info& x) override {
    std::lock_guard<std::mutex> guard{mtx};
    done[x.batch_time] = x;
  }
};

local_harness::local_harness(uint32_t workers,
                             std::chrono::milliseconds batch_interval,
                             std::string checkpoint_dir,
                             const std::function<void(run_settings&)>& adjust)
  : interval_(batch_interval.count()) {
  cfg_ = std::make_unique<config>();
  auto& s = cfg_->sluice_settings;
  s.checkpoint_dir = std::move(checkpoint_dir);
  s.mode = run_mode::local;
  s.local_workers = workers;
  s.batch_interval = batch_interval;
  s.block_interval = std::min(batch_interval, std::chrono::milliseconds{50});
  if (adjust)
    adjust(s);
  sys_ = std::make_unique<caf::actor_system>(*cfg_);
  clock_ = std::make_shared<manual_clock>(0);
  ssc_ = std::make_unique<streaming_context>(*sys_, s, clock_);
  recorder_ = std::make_shared<recorder>();
  ssc_->add_listener(recorder_);
  next_ = interval_;
}

local_harness::~local_harness() {
  ssc_->stop(false);
  ssc_.reset();
  sys_.reset();
}

void local_harness::start() {
  auto err = ssc_->start();
  INFO(describe(err));
  REQUIRE(!err);
}

batch_info local_harness::next_batch(const std::function<void()>& while_running) {
  auto t = next_;
  next_ += interval_;
  // The generator arms its next wake-up after it generated the previous
  // batch (or, first, once it started): advancing earlier would skip t.
  REQUIRE(wait_until([&] { return clock_->pending() > 0; }));
  clock_->advance_to(t);
  if (while_running)
    while_running();
  auto done = wait_until([&] {
    std::lock_guard<std::mutex> guard{recorder_->mtx};
    return recorder_->done.count(t) > 0;
  });
  INFO("batch " << t << " ms did not complete");
  REQUIRE(done);
  std::lock_guard<std::mutex> guard{recorder_->mtx};
  return recorder_->done[t];
}

} // namespace sluice::test
