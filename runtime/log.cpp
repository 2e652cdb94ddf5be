#include "runtime/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace sluice::log {

namespace {

std::atomic<int> threshold{static_cast<int>(level::info)};

std::mutex& out_mutex() {
  static std::mutex mx;
  return mx;
}

const char* name(level x) {
  switch (x) {
    case level::debug:
      return "DEBUG";
    case level::info:
      return "INFO ";
    case level::warning:
      return "WARN ";
    case level::error:
      return "ERROR";
    default:
      return "     ";
  }
}

} // namespace

void set_level(level x) {
  threshold = static_cast<int>(x);
}

level current_level() {
  return static_cast<level>(threshold.load(std::memory_order_relaxed));
}

bool parse_level(const std::string& str, level& out) {
  static constexpr std::pair<const char*, level> names[] = {
    {"debug", level::debug},     {"info", level::info},
    {"warning", level::warning}, {"error", level::error},
    {"quiet", level::quiet},
  };
  for (auto& [key, value] : names) {
    if (str == key) {
      out = value;
      return true;
    }
  }
  return false;
}

void write(level lvl, const char* component, const std::string& text) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm;
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
  std::lock_guard<std::mutex> guard{out_mutex()};
  std::fprintf(stderr, "%s.%03d %s [%s] %s\n", stamp, static_cast<int>(ms),
               name(lvl), component, text.c_str());
  std::fflush(stderr);
}

} // namespace sluice::log
