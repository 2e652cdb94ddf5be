#include "runtime/wal/writer.hpp"

#include <cerrno>
#include <filesystem>
#include <limits>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/io/errors.hpp"
#include "runtime/io/files.hpp"
#include "runtime/io/unique_fd.hpp"
#include "runtime/wal/format.hpp"
#include "runtime/wal/posix_io.hpp"
#include "runtime/wal/segments.hpp"

namespace sluice::wal {

namespace {

caf::error refused(std::string what) {
  return make_error(errc::refused, std::move(what));
}

std::string at_offset(const std::string& path, uint64_t offset) {
  return path + " at offset " + std::to_string(offset);
}

caf::expected<size_t> delete_segments(const std::string& dir,
                                      int64_t threshold_ms,
                                      const std::string& keep) {
  auto existing = list_segments(dir);
  if (!existing)
    return std::move(existing.error());
  size_t deleted = 0;
  for (auto& seg : *existing) {
    if (seg.range.end_ms > threshold_ms || seg.name == keep)
      continue;
    auto path = segment_path(dir, seg.name);
    if (::unlink(path.c_str()) != 0) {
      auto err = errno;
      if (err != ENOENT)
        return io::file_error("cannot delete segment", path, err);
    }
    ++deleted;
  }
  // No directory fsync: a crash may bring a deleted segment back, and the
  // next call deletes it again. Nothing depends on a deletion being durable.
  return deleted;
}

} // namespace

caf::expected<std::unique_ptr<writer>> writer::open(options opts) {
  if (opts.dir.empty())
    return refused("wal: the log directory is empty");
  if (opts.rolling_interval_ms <= 0)
    return refused("wal: rolling interval of " + opts.dir +
                   " must be positive, " + "got " +
                   std::to_string(opts.rolling_interval_ms) + " ms");
  std::error_code ec;
  auto created = std::filesystem::create_directories(opts.dir, ec);
  if (ec)
    return make_error(errc::io_failed, "cannot create log directory " +
                                           opts.dir + ": " + ec.message());
  if (created && opts.sync == fsync_policy::always) {
    // A new directory's entry in its parent must survive a crash, or the
    // segments in it are lost with it. (Only the last level: parents created
    // too are assumed to be set up once, before any data matters.)
    auto path = std::filesystem::absolute(opts.dir, ec).lexically_normal();
    if (!path.has_filename()) // "dir/" names dir
      path = path.parent_path();
    auto parent = path.parent_path().string();
    if (!ec) {
      if (auto err = io::fsync_directory(parent))
        return err;
    }
  }
  auto lock_path = opts.dir + "/LOCK";
  io::unique_fd lock{
      ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)};
  if (!lock) {
    auto err = errno;
    return io::file_error("cannot open", lock_path, err);
  }
  // flock, not fcntl locks: those are per process, so a second writer in the
  // same process would not see the first.
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    auto err = errno;
    if (err == EWOULDBLOCK)
      return refused("wal: log directory " + opts.dir +
                     " has a writer already (" + lock_path + " is locked)");
    return io::file_error("cannot lock", lock_path, err);
  }
  auto existing = list_segments(opts.dir);
  if (!existing)
    return std::move(existing.error());
  int64_t floor_ms = 0;
  for (auto& seg : *existing)
    floor_ms = std::max(floor_ms, seg.range.end_ms);
  return std::unique_ptr<writer>{
      new writer(std::move(opts), std::move(lock), floor_ms)};
}

writer::writer(options opts, io::unique_fd lock, int64_t floor_ms)
  : opts_(std::move(opts)),
    lock_(std::move(lock)),
    floor_ms_(floor_ms) {
  // nop
}

writer::~writer() {
  close();
}

caf::expected<handle> writer::append(int64_t now_ms, const void* data,
                                     size_t size) {
  if (closed_)
    return refused("wal: the writer of " + opts_.dir + " is closed");
  if (size > max_record_size)
    return refused("wal: a record of " + std::to_string(size) +
                   " bytes exceeds the maximum of " +
                   std::to_string(max_record_size) + " bytes (log " +
                   opts_.dir + ")");
  if (now_ms < 0)
    return refused("wal: negative time " + std::to_string(now_ms) +
                   " for an append to " + opts_.dir);
  if (!fd_ || now_ms >= end_ms_) {
    if (auto err = start_segment(now_ms))
      return err;
  }
  auto path = segment_path(opts_.dir, segment_);
  uint8_t header[frame_header_size];
  auto length = static_cast<uint32_t>(size);
  encode_frame_header(header, data, length);
  iovec iov[2];
  iov[0].iov_base = header;
  iov[0].iov_len = sizeof(header);
  iov[1].iov_base = const_cast<void*>(data);
  iov[1].iov_len = size;
  size_t written = 0;
  if (auto err = posix::write_all_at(fd_.get(), iov, size > 0 ? 2 : 1,
                                     good_end_, written)) {
    auto result = make_error(
        errc::io_failed, "cannot append a record of " + std::to_string(size) +
                             " bytes to " + at_offset(path, good_end_) + " (" +
                             std::to_string(written) +
                             " bytes written): " + io::errno_text(err));
    roll_back();
    return result;
  }
  if (opts_.sync == fsync_policy::always && ::fdatasync(fd_.get()) != 0) {
    auto err = errno;
    auto result =
        make_error(errc::io_failed, "cannot fdatasync the record appended to " +
                                        at_offset(path, good_end_) + ": " +
                                        io::errno_text(err));
    // After a failed fdatasync Linux may have dropped the dirty pages and
    // cleared the error: nothing says what is on disk, and a retry could
    // "succeed" without the data. Take the record back out and never write
    // to this segment again; its acknowledged records were synced before.
    roll_back();
    abandon_segment();
    return result;
  }
  handle result{segment_, good_end_, length};
  good_end_ += frame_header_size + size;
  return result;
}

void writer::roll_back() {
  // The failed record may have left a prefix of its frame after the last good
  // byte. Cutting it keeps the next record adjacent to the good ones, so the
  // segment stays one clean run and recovery never sees a bad record followed
  // by good ones (which it must call corruption). If the cut fails too, the
  // segment is left with a torn tail, which recovery cuts, and never written
  // again.
  if (::ftruncate(fd_.get(), static_cast<off_t>(good_end_)) != 0)
    abandon_segment();
}

void writer::abandon_segment() {
  fd_.close();
  segment_.clear();
  end_ms_ = 0;
  good_end_ = 0;
}

caf::error writer::start_segment(int64_t now_ms) {
  abandon_segment();
  auto start = std::max(now_ms, floor_ms_);
  if (start > std::numeric_limits<int64_t>::max() - opts_.rolling_interval_ms)
    return refused("wal: time " + std::to_string(start) +
                   " is too large for a segment of " + opts_.dir);
  segment_range range{start, start + opts_.rolling_interval_ms};
  auto name = segment_name(range);
  auto path = segment_path(opts_.dir, name);
  // O_EXCL: a segment is never reopened; a name taken means someone else
  // writes here, and appending to their file would interleave records.
  io::unique_fd fd{
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)};
  if (!fd) {
    auto err = errno;
    return io::file_error("cannot create segment", path, err);
  }
  auto remove_new = [&] {
    fd.close();
    // If the file cannot go, its name stays taken: start later ones after it.
    if (::unlink(path.c_str()) != 0)
      floor_ms_ = range.end_ms;
  };
  uint8_t header[segment_header_size];
  encode_segment_header(header);
  iovec iov{header, sizeof(header)};
  size_t written = 0;
  if (auto err = posix::write_all_at(fd.get(), &iov, 1, 0, written)) {
    remove_new();
    return io::file_error("cannot write the header of segment", path, err);
  }
  // The header itself becomes durable with the first record's fdatasync, but
  // the file's directory entry does not: without this, a crash could lose
  // the whole segment with records already acknowledged in it.
  if (opts_.sync == fsync_policy::always) {
    if (auto err = io::fsync_directory(opts_.dir)) {
      remove_new();
      return err;
    }
  }
  floor_ms_ = range.end_ms;
  segment_ = std::move(name);
  fd_ = std::move(fd);
  end_ms_ = range.end_ms;
  good_end_ = segment_header_size;
  return caf::none;
}

caf::error writer::sync() {
  if (!fd_)
    return caf::none;
  if (::fdatasync(fd_.get()) != 0) {
    auto err = errno;
    auto path = segment_path(opts_.dir, segment_);
    // Same reasoning as a failed fdatasync in append: the records written
    // since the last successful sync are in doubt, so stop writing here.
    abandon_segment();
    return io::file_error("cannot fdatasync segment", path, err);
  }
  return caf::none;
}

void writer::close() {
  if (closed_)
    return;
  closed_ = true;
  abandon_segment();
  lock_.close();
}

caf::expected<size_t> writer::delete_older_than(int64_t threshold_ms) {
  if (closed_)
    return refused("wal: the writer of " + opts_.dir + " is closed");
  return delete_segments(opts_.dir, threshold_ms, segment_);
}

caf::expected<size_t> delete_older_than(const std::string& dir,
                                        int64_t threshold_ms) {
  return delete_segments(dir, threshold_ms, {});
}

} // namespace sluice::wal
