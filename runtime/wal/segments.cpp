#include "runtime/wal/segments.hpp"

#include <algorithm>
#include <filesystem>
#include <tuple>

#include "runtime/error.hpp"

namespace sluice::wal {

namespace fs = std::filesystem;

caf::expected<std::vector<segment_info>> list_segments(const std::string& dir) {
  std::vector<segment_info> result;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    if (ec)
      return make_error(errc::io_failed, "cannot stat log directory " + dir +
                                             ": " + ec.message());
    return result;
  }
  fs::directory_iterator it{dir, ec};
  if (ec)
    return make_error(errc::io_failed,
                      "cannot list log directory " + dir + ": " + ec.message());
  while (it != fs::directory_iterator{}) {
    auto name = it->path().filename().string();
    if (auto range = parse_segment_name(name))
      result.push_back(segment_info{std::move(name), *range});
    if (it.increment(ec); ec)
      break;
  }
  if (ec)
    return make_error(errc::io_failed,
                      "cannot list log directory " + dir + ": " + ec.message());
  // Numeric order: "log-9-19" precedes "log-10-20", unlike in `ls`.
  std::sort(result.begin(), result.end(), [](auto& x, auto& y) {
    return std::tie(x.range.start_ms, x.range.end_ms) <
           std::tie(y.range.start_ms, y.range.end_ms);
  });
  return result;
}

std::vector<std::string> segments(const std::string& dir) {
  std::vector<std::string> result;
  if (auto xs = list_segments(dir))
    for (auto& x : *xs)
      result.push_back(std::move(x.name));
  return result;
}

} // namespace sluice::wal
