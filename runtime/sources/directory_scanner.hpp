#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace sluice {

/// Finds the files that arrived in a directory since the last scan, for the
/// directory stream (textFileStream): each file is returned once, in arrival
/// order (inode change time, which a rename into the directory sets, then
/// name), and never again while it stays in the directory.
///
/// Ignored: names starting with '.' or '_' (files still being written, by
/// convention), subdirectories. A file that cannot be opened for reading is
/// reported once in `problems` and retried at every scan until it can be read
/// or disappears, so a file fixed later is still processed: nothing is lost.
///
/// Runs on the driver, inside the JobGenerator. Not thread-safe: one owner.
class directory_scanner {
public:
  explicit directory_scanner(std::string dir);

  const std::string& dir() const noexcept {
    return dir_;
  }

  struct result {
    std::vector<std::string> files;    ///< new readable files, absolute paths
    std::vector<std::string> problems; ///< new errors, one line each
  };

  result scan();

  /// Files returned by earlier scans that are still present.
  const std::set<std::string>& seen() const noexcept {
    return seen_;
  }

  /// Marks files as already processed (recovery from a checkpoint).
  void mark_seen(const std::vector<std::string>& files);

private:
  std::string dir_;
  std::set<std::string> seen_;
  std::set<std::string> reported_;
  bool dir_reported_ = false;
};

/// Reads the lines of a file ('\n'-separated, a trailing '\r' dropped, a last
/// line without '\n' included) and appends them to `out`. Throws
/// std::runtime_error naming the file and the OS error if it cannot be read.
void read_lines(const std::string& path, std::vector<std::string>& out);

} // namespace sluice
