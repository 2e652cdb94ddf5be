#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/io/unique_fd.hpp"
#include "runtime/wal/handle.hpp"
#include "runtime/wal/options.hpp"

namespace sluice::wal {

/// Appends records to the segments of one log directory.
///
/// Owner: whoever logs into the directory (a receiver's actor for its stream,
/// the ReceiverTracker for block events) creates it with open() and is its
/// only user. One writer per directory: open() takes an exclusive lock on
/// `<dir>/LOCK` (released when the writer closes or the process dies), so a
/// second writer, in this process or another, is refused. Concurrency: not
/// thread-safe; one thread (actor) calls every member. Lifetime: until
/// close() or destruction; the segments it wrote outlive it.
///
/// Crash safety: a segment is created with its header and its directory
/// entry made durable before the first record in it is acknowledged, and
/// records are only ever appended after the last good byte. Whatever a crash
/// leaves after the last acknowledged record is a torn tail that recover()
/// cuts; see docs/wal_format.md.
class writer {
public:
  /// Creates `opts.dir` if missing and locks it. Never reopens an old
  /// segment: the first append starts a new one, after every existing one.
  static caf::expected<std::unique_ptr<writer>> open(options opts);

  ~writer();

  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;

  /// Appends one record stamped with `now_ms` (the caller's clock, >= 0;
  /// only used to pick and roll segments) and returns its handle once the
  /// record is durable under the policy. On failure (a full disk, a file
  /// size limit, an fsync error) returns the error and the log stays
  /// consistent: the failed record is never reported, and a later append
  /// that succeeds is readable. A payload above max_record_size is refused.
  caf::expected<handle> append(int64_t now_ms, const void* data, size_t size);

  /// fdatasyncs the segment being written (useful under fsync_policy::none).
  caf::error sync();

  /// Closes the segment being written and releases the lock; later appends
  /// are refused. Does not sync: under `always` everything acknowledged is
  /// already durable, under `none` the OS decides. Idempotent.
  void close();

  /// Deletes every segment whose whole time range ends at or before
  /// `threshold_ms`, except the one being written; returns how many. Handles
  /// into deleted segments stop reading.
  caf::expected<size_t> delete_older_than(int64_t threshold_ms);

  const std::string& dir() const {
    return opts_.dir;
  }

  /// Name of the segment being written; empty before the first append, after
  /// close(), and after a failure that abandoned the segment.
  const std::string& current_segment() const {
    return segment_;
  }

private:
  writer(options opts, io::unique_fd lock, int64_t floor_ms);

  /// Starts a new segment for a record stamped `now_ms`.
  caf::error start_segment(int64_t now_ms);

  /// Gives up on the segment being written: the next append starts another.
  void abandon_segment();

  /// Puts the segment back to its last good end after a failed append.
  void roll_back();

  options opts_;
  io::unique_fd lock_;
  bool closed_ = false;
  /// No new segment may start before this: the end of the newest segment
  /// seen or written. It keeps segments in time order even when the caller's
  /// clock repeats or goes back, and names unique across reopens.
  int64_t floor_ms_ = 0;
  /// The segment being written; empty and fd closed when there is none.
  std::string segment_;
  io::unique_fd fd_;
  int64_t end_ms_ = 0;
  /// Length of the segment's valid prefix: where the next record goes.
  uint64_t good_end_ = 0;
};

/// Deletes the segments of `dir` that end at or before `threshold_ms`,
/// without being its writer (the driver cleans receivers' logs this way).
/// Safe while a writer appends: its segment ends after every time it was
/// given, which is later than any threshold a caller derives from the past.
caf::expected<size_t> delete_older_than(const std::string& dir,
                                        int64_t threshold_ms);

} // namespace sluice::wal
