#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>

namespace sluice {

// Crash-safe file creation for checkpoint files (metadata and state).
// Every function here is a free function without shared state: any thread
// may call them, for different paths. Errors are errc::io_failed naming the
// file and the OS error.

/// Writes `size` bytes at `data` as the file `path` (replacing it if it
/// exists) so that, whenever the process or the machine dies, `path` is
/// either what it was before or the complete new content, never a torn
/// file; once this returns no error, the new file survives a power loss.
///
/// The sequence, and why each step is needed on the crash path:
/// 1. write a temporary file `<path>.<pid>.<n>.tmp` in the same directory:
///    a crash mid-write leaves only the temporary name, which readers
///    ignore (the name is unique, so two writers never share a temp file);
/// 2. fsync it: file systems may persist the rename (step 3) before the
///    data, so without this a crash can leave `path` empty or with garbage;
/// 3. close it, checking the result (some file systems report delayed
///    write errors only there), then rename it to `path`: rename replaces
///    atomically, a reader sees the old file or the new one;
/// 4. fsync the directory: the rename is a change of the directory, lost on
///    power failure until the directory is synced; callers delete older
///    checkpoints after this returns, so the new name must be durable first.
/// On failure the temporary file is removed (best effort) and `path` is
/// untouched. The parent directory must exist (see ensure_directory).
caf::error write_file_atomically(const std::string& path, const void* data,
                                 size_t size);

/// As above, for a file made of `pieces` written in order: lets a caller
/// write a header and large partitions without joining them in memory.
caf::error write_file_atomically(const std::string& path,
                                 const std::vector<std::string_view>& pieces);

/// Creates `dir` and its missing parents, fsyncing the parent of each one
/// created: a new directory's own entry is lost on power failure otherwise,
/// and with it every file later made durable inside it.
caf::error ensure_directory(const std::string& dir);

/// fsync(2) of a directory: makes creations, renames and deletions in it
/// durable.
caf::error fsync_directory(const std::string& dir);

/// True for names of temporary files of an unfinished write_file_atomically
/// (a crash between steps 1 and 3): they end in ".tmp".
bool is_temporary_file_name(std::string_view name) noexcept;

} // namespace sluice
