#pragma once

// Test support: waiting on conditions with deadlines (never sleeping as
// synchronisation), temporary directories, child processes, a TCP text
// server, and word totals over output directories.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace sluice::test {

/// Number of (non-overlapping) occurrences of `what` in `text`.
size_t occurrences(const std::string& text, const std::string& what);

/// Polls `cond` until it holds or `deadline` passes; true if it held.
bool wait_until(const std::function<bool()>& cond,
                std::chrono::milliseconds deadline = std::chrono::seconds{30});

/// A fresh directory under /tmp, removed with everything in it at the end.
class temp_dir {
public:
  explicit temp_dir(const std::string& tag = "sluice");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const noexcept {
    return path_;
  }

  std::string operator/(const std::string& name) const {
    return path_ + "/" + name;
  }

private:
  std::string path_;
};

/// Writes `content` to `path` (truncating).
void write_file(const std::string& path, const std::string& content);

/// Reads a whole file; empty if it does not exist.
std::string read_file(const std::string& path);

/// A child process with stdout and stderr captured to files.
class child_process {
public:
  /// Starts `argv[0]` with the arguments; throws if fork/exec fails.
  child_process(std::vector<std::string> argv, const std::string& log_dir,
                const std::string& name);
  ~child_process(); ///< SIGKILLs and reaps the child if still running

  pid_t pid() const noexcept {
    return pid_;
  }

  void signal(int sig);

  /// Waits up to `deadline` for the exit; returns the exit status (as from
  /// waitpid) or -1 on timeout.
  int wait(std::chrono::milliseconds deadline = std::chrono::seconds{60});

  bool running();

  std::string out() const;
  std::string err() const;

private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string out_path_;
  std::string err_path_;
};

/// A TCP server on 127.0.0.1 (OS-chosen port) that sends `text` to the first
/// client that connects, then closes that connection; later clients are
/// accepted and get nothing, so a reconnecting receiver never counts the
/// text twice.
///
/// With `lines_per_second` > 0 the text is sent at that pace, a few lines at
/// a time, instead of as fast as the socket takes it: the kernel's socket
/// buffers then hold next to nothing, so what a killed client had not read
/// is bounded by the pace, and the stream lasts text lines / pace seconds.
/// A send that fails (the client died) ends the transmission; the text is
/// never resumed for a later client, unless `resume` is set: then the next
/// client gets the text from the first line the failed one did not get
/// completely (a receiver restarted elsewhere goes on with the stream).
class text_server {
public:
  explicit text_server(std::string text, double lines_per_second = 0,
                       bool resume = false);
  ~text_server();

  uint16_t port() const noexcept {
    return port_;
  }

  /// True once the text was sent completely.
  bool sent() const;

  /// True once the transmission to the first client ended, completely or
  /// because a send failed.
  bool finished() const;

  /// Complete lines the kernel accepted so far (a line counts once all its
  /// bytes, '\n' included, were sent).
  size_t lines_sent() const;

  /// With `resume`: the line each client's transmission started at, in
  /// order of the clients (the first is 0).
  std::vector<size_t> client_starts() const;

private:
  void serve();
  /// Sends from byte `from` (line `line`) on, then closes fd; returns the
  /// end of the last complete line sent (bytes, lines).
  std::pair<size_t, size_t> send_text(int fd, size_t from, size_t line);

  std::string text_;
  double lines_per_second_ = 0;
  bool resume_ = false;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::shared_ptr<std::atomic<bool>> stop_;
  std::shared_ptr<std::atomic<bool>> sent_;
  std::shared_ptr<std::atomic<bool>> finished_;
  std::shared_ptr<std::atomic<size_t>> lines_sent_;
  mutable std::mutex starts_mtx_;
  std::vector<size_t> client_starts_;
};

/// A port on 127.0.0.1 that refuses connections (bound, then closed).
uint16_t refused_port();

/// The newest batch directory below `out`, or "" if there is none.
std::string newest_batch(const std::string& out);

/// Writes `text` into `dir`, then renames it into `in`: how files arrive
/// atomically in a watched directory.
void move_in(const temp_dir& dir, const std::string& in, const std::string& name,
             const std::string& text);

/// A port on 127.0.0.1 that was free a moment ago (bound, then closed), for
/// a process that must listen on the same port across restarts. Another
/// process could take it meanwhile; on a test machine that is unlikely.
uint16_t free_port();

/// A tmpfs of `size` (e.g. "256k") mounted at `path` for the object's life
/// (we run as root; where mounting is not allowed, mounted() is false and
/// error() says why, and a test falls back to another way of filling a
/// disk). The destructor unmounts lazily, also when a test fails.
class tmpfs_mount {
public:
  tmpfs_mount(const std::string& path, const std::string& size);
  ~tmpfs_mount();

  tmpfs_mount(const tmpfs_mount&) = delete;
  tmpfs_mount& operator=(const tmpfs_mount&) = delete;

  bool mounted() const {
    return mounted_;
  }

  const std::string& error() const {
    return error_;
  }

private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

/// Word counts of `text` with wordcount's split rule (ASCII whitespace).
std::map<std::string, int64_t> count_words(const std::string& text);

/// Sums "word<TAB>count" lines over every part file below `dir`
/// (DIR/<batch>/part-NNNNN). Lines that do not parse make the test fail.
std::map<std::string, int64_t> read_word_totals(const std::string& dir);

/// Deterministic text: `lines` lines of words from a small vocabulary.
std::string make_text(size_t lines, uint64_t seed);

/// make_text, with every line starting with its own token `L<i>` (i from 0):
/// word counts then say exactly which lines were counted, and how often.
std::string make_tagged_text(size_t lines, uint64_t seed);

/// The line number of a token made by make_tagged_text, or -1 for other words.
long long line_tag(const std::string& word);

/// Paths of the application binaries built with the tests.
std::string wordcount_binary();
std::string topk_binary();

} // namespace sluice::test
