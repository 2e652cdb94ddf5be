#pragma once

// Crash-safe file creation, shared by everything that must find its files
// whole after a crash: checkpoint files (metadata and state), output part
// files, log directories. Free functions without shared state: any thread
// may call them, for different paths. Errors are errc::io_failed naming the
// file and the OS error (io::file_error); nothing throws.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>

namespace sluice::io {

/// Writes `size` bytes at `data` to `fd` at its current offset, retrying
/// short writes and EINTR. Returns 0 or the errno that stopped it.
int write_all(int fd, const void* data, size_t size);

/// fsync(2) of a directory: makes the creations, renames and deletions of
/// entries in it durable. A file's own fsync covers its data, not its name;
/// until its directory is synced a power loss can take the name back, and
/// with it the file.
caf::error fsync_directory(const std::string& dir);

/// How write_file_atomically names its temporary file. Either name is unique
/// per process and call (the pid separates processes sharing a directory,
/// e.g. a restarted driver while the old one is not yet dead, and two
/// attempts of one task) and ends in ".tmp" (is_temporary_file_name).
enum class temporary_name {
  /// `<path>.<pid>.<n>.tmp`: the checkpoint directory's cleanup maps a
  /// leftover back to the final name it was meant to get.
  beside,
  /// `<dir>/.<name>.<pid>.<n>.tmp`: output directories, whose readers
  /// commonly skip dot files (as Hadoop's input formats do) and so never
  /// take an unfinished part file for a finished one.
  hidden,
};

/// Writes `pieces`, in order, as the file `path` (replacing it if it exists)
/// so that, whenever the process or the machine dies, `path` is either what
/// it was before or the complete new content, never a torn file; once this
/// returns no error, the new file survives a power loss. Pieces let a caller
/// write a header and large partitions without joining them in memory.
///
/// The sequence, and why each step is needed on the crash path:
/// 1. write a temporary file in the same directory (see temporary_name): a
///    crash mid-write leaves only the temporary name, which readers ignore;
/// 2. fsync it: file systems may persist the rename (step 3) before the
///    data, so without this a crash can leave `path` empty or with garbage;
/// 3. close it, checking the result (some file systems report delayed
///    write errors only there), then rename it to `path`: rename replaces
///    atomically, a reader sees the old file or the new one;
/// 4. fsync the directory: the rename is a change of the directory, lost on
///    power failure until the directory is synced; callers act on the new
///    file after this returns (delete older checkpoints, report a batch
///    complete), so the new name must be durable first.
/// On failure the temporary file is removed (best effort) and `path` is
/// untouched. The parent directory must exist (see ensure_directory).
caf::error
write_file_atomically(const std::string& path,
                      const std::vector<std::string_view>& pieces,
                      temporary_name naming = temporary_name::beside);

/// As above, for `size` bytes at `data`.
caf::error
write_file_atomically(const std::string& path, const void* data, size_t size,
                      temporary_name naming = temporary_name::beside);

/// Creates `dir` and its missing parents, fsyncing the parent of each one
/// created: a new directory's own entry is lost on power failure otherwise,
/// and with it every file later made durable inside it.
caf::error ensure_directory(const std::string& dir);

/// True for names of temporary files of an unfinished write_file_atomically
/// (a crash between steps 1 and 3): they end in ".tmp".
bool is_temporary_file_name(std::string_view name) noexcept;

} // namespace sluice::io
