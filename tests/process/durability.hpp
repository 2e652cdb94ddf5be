#pragma once

// What the durability tests (test_durability_*.cpp) share: wordcount in
// local mode over a directory, with running totals and a checkpoint
// directory, killed and restarted with the same options (local_job); the
// files a run leaves; and damage done to them the way a bad disk would.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "tests/process/cluster.hpp"

namespace sluice::test {

using word_totals = std::map<std::string, int64_t>;

/// The checkpoints a restart says it passed over, but for the temporary
/// files of writes a kill interrupted (named too, but never read).
inline std::vector<std::string> skipped_checkpoints(const std::string& log) {
  std::vector<std::string> result;
  std::regex re{"skipped checkpoint (\\S+): "};
  for (std::sregex_iterator i{log.begin(), log.end(), re}, end; i != end; ++i)
    if ((*i)[1].str().substr((*i)[1].str().size() - 4) != ".tmp")
      result.push_back((*i)[1].str());
  return result;
}

/// wordcount in local mode (a driver and two workers in one process) over a
/// directory, with running totals (--stateful) and a checkpoint directory;
/// restarted with the same options after each kill.
struct local_job {
  temp_dir dir{"sluice-durability"};
  std::string in = dir / "in";
  std::string ckpt = dir / "ckpt";
  std::string out = dir / "out";
  std::string batch_interval = "200ms";
  std::vector<std::string> options;
  word_totals expected;            ///< every file moved in so far
  std::vector<word_totals> files;  ///< each file's counts, in arrival order
  std::unique_ptr<child_process> proc;
  std::vector<std::unique_ptr<child_process>> earlier;

  explicit local_job(std::vector<std::string> extra = {})
    : options(std::move(extra)) {
    std::filesystem::create_directories(in);
  }

  std::vector<std::string> args() const {
    std::vector<std::string> result{wordcount_binary(),
                                    "--local=2",
                                    "--source=dir://" + in,
                                    "--output=" + out,
                                    "--batch-interval=" + batch_interval,
                                    "--stateful",
                                    "--checkpoint=" + ckpt};
    result.insert(result.end(), options.begin(), options.end());
    return result;
  }

  child_process& start() {
    if (proc)
      earlier.push_back(std::move(proc));
    proc = std::make_unique<child_process>(
      args(), dir.path(), "run" + std::to_string(earlier.size() + 1));
    return *proc;
  }

  void add_file() {
    auto n = files.size();
    auto text = make_text(150 + n * 13, 700 + n);
    auto counts = count_words(text);
    for (auto& [w, c] : counts)
      expected[w] += c;
    files.push_back(std::move(counts));
    move_in(dir, in, "f" + std::to_string(n), text);
  }

  /// The running totals of the newest batch.
  word_totals newest_totals() const {
    auto newest = newest_batch(out);
    return newest.empty() ? word_totals{} : read_word_totals(newest);
  }

  /// wait_until, adding the logs to the next assertion when `cond` never held.
  bool await(const std::function<bool()>& cond,
             std::chrono::milliseconds deadline = std::chrono::seconds{30}) const {
    if (wait_until(cond, deadline))
      return true;
    UNSCOPED_INFO(logs());
    return false;
  }

  bool await_exact(std::chrono::milliseconds deadline = std::chrono::seconds{60}) const {
    return await([&] { return newest_totals() == expected; }, deadline);
  }

  /// Files in and counted, one more on its way, then SIGKILL once the next
  /// batch completed (the file counted by then, or still in flight).
  void run_then_kill() {
    start();
    for (int i = 0; i < 3; ++i)
      add_file();
    REQUIRE(await_exact());
    add_file();
    auto seen = completed_batches(*proc);
    REQUIRE(await([&] { return completed_batches(*proc) > seen; }));
    kill();
  }

  void kill() {
    proc->signal(SIGKILL);
    proc->wait();
  }

  std::string logs() const {
    std::string result;
    for (size_t i = 0; i < earlier.size(); ++i)
      result += "--- run " + std::to_string(i + 1) + "\n" + earlier[i]->err();
    if (proc)
      result += "--- run " + std::to_string(earlier.size() + 1) + "\n" + proc->err();
    return result;
  }
};

/// Metadata checkpoint files (docs/checkpoint_format.md), newest first: by
/// batch time, then sequence number; temporaries are not checkpoints.
inline std::vector<std::string> checkpoint_files(const std::string& ckpt) {
  std::regex name{"checkpoint-([1-9][0-9]*|0)(-([1-9][0-9]*))?"};
  std::vector<std::tuple<long long, long long, std::string>> found;
  for (auto& e : std::filesystem::directory_iterator(ckpt)) {
    std::smatch m;
    auto file = e.path().filename().string();
    if (e.is_regular_file() && std::regex_match(file, m, name))
      found.emplace_back(std::stoll(m[1]), m[3].matched ? std::stoll(m[3]) : 0,
                         e.path().string());
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> result;
  for (auto& f : found)
    result.push_back(std::get<2>(f));
  return result;
}

/// Every regular file below `dir` with its size: what a run wrote.
inline std::map<std::string, uintmax_t> file_sizes(const std::string& dir) {
  std::map<std::string, uintmax_t> result;
  std::error_code ec;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file())
      result[e.path().string()] = e.file_size();
  return result;
}

/// Damage made durable, as a disk would leave it.
inline void sync_file(int fd) {
  REQUIRE(::fsync(fd) == 0);
  ::close(fd);
}

inline void flip_byte(const std::string& path, uint64_t offset) {
  auto fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  unsigned char b = 0;
  REQUIRE(::pread(fd, &b, 1, static_cast<off_t>(offset)) == 1);
  b ^= 0xff;
  REQUIRE(::pwrite(fd, &b, 1, static_cast<off_t>(offset)) == 1);
  sync_file(fd);
}

inline void truncate_to(const std::string& path, uint64_t size) {
  auto fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, static_cast<off_t>(size)) == 0);
  sync_file(fd);
}

} // namespace sluice::test
