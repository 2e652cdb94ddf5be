#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <tuple>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <capnp/serialize.h>

#include "messages/driver_log.capnp.h"
#include "runtime/checkpoint/checkpoint_dir.hpp"
#include "runtime/checkpoint/file_reader.hpp"
#include "runtime/checkpoint/metadata.hpp"
#include "runtime/exec/planner.hpp"
#include "tests/process/cluster.hpp"

// Durability against damaged and missing files (docs/recovery.md,
// docs/wal_format.md, docs/checkpoint_format.md), with real processes:
// wordcount is killed with SIGKILL, the test damages what it left on disk
// the way a bad disk or a careless hand would, and restarts it with the same
// options. Either the restart recovers exactly (saying what it passed over)
// or it stops with exit code 1 naming the file; it never silently drops
// input.

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

using word_totals = std::map<std::string, int64_t>;

/// The checkpoints a restart says it passed over, but for the temporary
/// files of writes a kill interrupted (named too, but never read).
std::vector<std::string> skipped_checkpoints(const std::string& log) {
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
    fs::create_directories(in);
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
std::vector<std::string> checkpoint_files(const std::string& ckpt) {
  std::regex name{"checkpoint-([1-9][0-9]*|0)(-([1-9][0-9]*))?"};
  std::vector<std::tuple<long long, long long, std::string>> found;
  for (auto& e : fs::directory_iterator(ckpt)) {
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
std::map<std::string, uintmax_t> file_sizes(const std::string& dir) {
  std::map<std::string, uintmax_t> result;
  std::error_code ec;
  for (auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file())
      result[e.path().string()] = e.file_size();
  return result;
}

/// Damage made durable, as a disk would leave it.
void sync_file(int fd) {
  REQUIRE(::fsync(fd) == 0);
  ::close(fd);
}

void flip_byte(const std::string& path, uint64_t offset) {
  auto fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  unsigned char b = 0;
  REQUIRE(::pread(fd, &b, 1, static_cast<off_t>(offset)) == 1);
  b ^= 0xff;
  REQUIRE(::pwrite(fd, &b, 1, static_cast<off_t>(offset)) == 1);
  sync_file(fd);
}

void truncate_to(const std::string& path, uint64_t size) {
  auto fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, static_cast<off_t>(size)) == 0);
  sync_file(fd);
}

// -- the driver log, read without changing it ----------------------------------

/// One complete record of a driver log segment (docs/wal_format.md).
struct log_record {
  std::string segment; ///< path
  uint64_t offset = 0; ///< of the frame
  uint32_t length = 0; ///< of the payload
  std::string payload;
};

uint32_t le32(const std::string& bytes, size_t at) {
  uint32_t x = 0;
  for (int i = 3; i >= 0; --i)
    x = (x << 8) | static_cast<unsigned char>(bytes[at + static_cast<size_t>(i)]);
  return x;
}

/// The complete records of every driver log segment in log order. Parsed
/// here instead of with wal::recover, which would cut the record a running
/// driver is appending as a torn tail.
std::vector<log_record> read_driver_log(const std::string& ckpt) {
  std::regex name{"log-([0-9]+)-([0-9]+)"};
  std::vector<std::pair<long long, std::string>> segments;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(ckpt + "/driver-wal", ec)) {
    std::smatch m;
    auto file = e.path().filename().string();
    if (std::regex_match(file, m, name))
      segments.emplace_back(std::stoll(m[1]), e.path().string());
  }
  std::sort(segments.begin(), segments.end());
  std::vector<log_record> result;
  for (auto& [start, path] : segments) {
    auto bytes = read_file(path);
    size_t pos = 16; // segment header
    while (pos + 9 <= bytes.size()) {
      auto length = le32(bytes, pos + 4);
      if (bytes[pos + 8] != 1 || pos + 9 + length > bytes.size())
        break;
      result.push_back(log_record{path, pos, length, bytes.substr(pos + 9, length)});
      pos += 9 + length;
    }
  }
  return result;
}

/// The batch time and files of a batchAllocated record; nullopt for other
/// records and for bytes that do not decode (read while being written).
std::optional<std::pair<int64_t, std::vector<std::string>>>
allocation_of(const log_record& r) {
  std::vector<capnp::word> words(r.payload.size() / sizeof(capnp::word));
  std::memcpy(words.data(), r.payload.data(), words.size() * sizeof(capnp::word));
  try {
    capnp::FlatArrayMessageReader reader{kj::arrayPtr(words.data(), words.size())};
    auto ev = reader.getRoot<sluice::wire::DriverLogEvent>();
    if (ev.which() != sluice::wire::DriverLogEvent::BATCH_ALLOCATED)
      return std::nullopt;
    auto alloc = ev.getBatchAllocated();
    std::vector<std::string> files;
    for (auto& [node, parts] : sluice::decode_inputs(alloc.getInputs()))
      for (auto& p : parts)
        if (p.is_file)
          files.push_back(p.file);
    return std::make_pair(alloc.getBatchTime(), std::move(files));
  } catch (const kj::Exception&) {
    return std::nullopt;
  }
}

/// The newest metadata checkpoint that validates, read with the runtime's
/// own reader (what a restart would choose before looking at anything else).
sluice::checkpoint_metadata newest_valid_checkpoint(const std::string& ckpt) {
  auto loaded = sluice::checkpoint_dir{ckpt}.load_newest();
  REQUIRE(loaded);
  REQUIRE(*loaded);
  return (*loaded)->meta;
}

/// The metadata checkpoint in `file`, if it decodes.
std::optional<sluice::checkpoint_metadata> decode_file(const std::string& file) {
  auto bytes = sluice::read_whole_file(file, 1 << 20);
  if (!bytes)
    return std::nullopt;
  auto meta = sluice::decode_checkpoint(*bytes, file);
  if (!meta)
    return std::nullopt;
  return std::move(*meta);
}

/// Every metadata checkpoint file that decodes, newest first (a file may
/// be deleted by retention while this reads: it is left out).
std::vector<sluice::checkpoint_metadata> decodable_checkpoints(const std::string& ckpt) {
  std::vector<sluice::checkpoint_metadata> result;
  for (auto& f : checkpoint_files(ckpt))
    if (auto meta = decode_file(f))
      result.push_back(std::move(*meta));
  return result;
}

/// The state files the metadata checkpoints name.
std::set<std::string> named_state_files(const std::string& ckpt) {
  std::set<std::string> result;
  for (auto& meta : decodable_checkpoints(ckpt))
    for (auto& ref : meta.states)
      result.insert(ref.file);
  return result;
}

// -- metadata checkpoint damage ---------------------------------------------------

enum class damage { flip, truncate, remove };

/// Kills a run, damages its newest metadata checkpoint, restarts it, and
/// checks that the restart passed over the damaged file (saying why) and
/// recovered from the previous one exactly.
void newest_checkpoint_damaged(damage how) {
  local_job job;
  job.run_then_kill();
  auto files = checkpoint_files(job.ckpt);
  REQUIRE(files.size() >= 2);
  auto newest = files[0];
  auto previous = files[1];
  auto size = fs::file_size(newest);
  switch (how) {
    case damage::flip:
      flip_byte(newest, 24 + (size - 24) / 2); // in the body
      break;
    case damage::truncate:
      truncate_to(newest, size / 2);
      break;
    case damage::remove:
      fs::remove(newest);
      break;
  }
  auto& p = job.start();
  REQUIRE(job.await([&] { return occurrences(p.err(), "recovered from ") > 0; }));
  INFO(job.logs());
  switch (how) {
    case damage::flip:
      CHECK_THAT(p.err(), Catch::Contains("skipped checkpoint " + newest + ": CRC mismatch"));
      break;
    case damage::truncate:
      CHECK_THAT(p.err(), Catch::Contains("skipped checkpoint " + newest + ": truncated"));
      break;
    case damage::remove:
      CHECK(skipped_checkpoints(p.err()).empty());
      break;
  }
  CHECK_THAT(p.err(), Catch::Contains("recovering from " + previous + " "));
  job.add_file();
  job.add_file();
  REQUIRE(job.await_exact());
  p.signal(SIGTERM);
  CHECK(exited_with(p.wait(), 0));
  CHECK(job.newest_totals() == job.expected);
}

} // namespace

TEST_CASE("a restart says why it passes over a newest metadata checkpoint with "
          "a flipped byte and recovers exactly from the previous one",
          "[process][recovery]") {
  newest_checkpoint_damaged(damage::flip);
}

TEST_CASE("a restart says why it passes over a truncated newest metadata "
          "checkpoint and recovers exactly from the previous one",
          "[process][recovery]") {
  newest_checkpoint_damaged(damage::truncate);
}

TEST_CASE("a restart after the newest metadata checkpoint was deleted recovers "
          "exactly from the previous one",
          "[process][recovery]") {
  newest_checkpoint_damaged(damage::remove);
}

TEST_CASE("a restart exits with code 1 naming every metadata checkpoint when "
          "all are damaged and writes no output",
          "[process][recovery]") {
  local_job job;
  job.run_then_kill();
  auto files = checkpoint_files(job.ckpt);
  REQUIRE_FALSE(files.empty());
  for (auto& f : files)
    flip_byte(f, 24 + (fs::file_size(f) - 24) / 2);
  auto written = file_sizes(job.out);
  auto& p = job.start();
  auto status = p.wait();
  INFO(job.logs());
  CHECK(exited_with(status, 1));
  CHECK_THAT(p.err(), Catch::Contains("no valid checkpoint in " + job.ckpt));
  for (auto& f : files)
    CHECK_THAT(p.err(), Catch::Contains(f + ": CRC mismatch"));
  CHECK(file_sizes(job.out) == written);
}

// -- driver log damage --------------------------------------------------------------

TEST_CASE("a restart exits with code 1 naming the segment and offset when a "
          "driver log record before the tail is damaged",
          "[process][recovery]") {
  local_job job;
  job.start();
  job.add_file();
  REQUIRE(job.await_exact());
  job.add_file();
  REQUIRE(job.await([&] { return read_driver_log(job.ckpt).size() >= 6; }));
  job.kill();
  auto records = read_driver_log(job.ckpt);
  // A record in the middle of the newest segment, with records after it:
  // damage to acknowledged data, which recovery must not cut as a tail.
  auto segment = records.back().segment;
  std::vector<const log_record*> in_segment;
  for (auto& r : records)
    if (r.segment == segment)
      in_segment.push_back(&r);
  REQUIRE(in_segment.size() >= 3);
  auto& victim = *in_segment[in_segment.size() / 2];
  flip_byte(segment, victim.offset + 9 + victim.length / 2);
  auto size = fs::file_size(segment);
  auto written = file_sizes(job.out);
  auto& p = job.start();
  auto status = p.wait();
  INFO(job.logs());
  CHECK(exited_with(status, 1));
  CHECK_THAT(p.err(), Catch::Contains("in " + segment + " at offset "
                                      + std::to_string(victim.offset)));
  // Nothing was cut or written: the damage is there for a human to look at.
  CHECK(fs::file_size(segment) == size);
  CHECK(file_sizes(job.out) == written);
}

namespace {

/// Whether checkpoint file `path` was written for batch `t`.
bool checkpoint_of(const std::string& path, int64_t t) {
  auto name = fs::path{path}.filename().string();
  auto prefix = "checkpoint-" + std::to_string(t);
  return name == prefix || name.rfind(prefix + "-", 0) == 0;
}

/// Kills a run right after the driver logged the allocation of the batch
/// that took the newest file and wrote that batch's checkpoint, then cuts
/// the last 3 bytes of that record. With `crashed_mid_append` the test also
/// removes what the driver wrote after the record (the batch's checkpoints
/// and output): the state a crash in the middle of the append leaves, where
/// nothing depends on the record. Without it, checkpoints depend on a
/// record recovery cannot read: damage to the last record, which cannot be
/// told from a torn one.
void torn_allocation(bool crashed_mid_append) {
  // No data checkpoint during the test (so no batch is ever released and
  // the newest log record stays a batch allocation), and batches a second
  // apart, so the kill lands before the next batch's allocation.
  local_job job{{"--state-checkpoint-interval=3600s"}};
  job.batch_interval = "1s";
  job.start();
  for (int i = 0; i < 3; ++i)
    job.add_file();
  REQUIRE(job.await_exact());
  job.add_file();
  auto last_file = job.in + "/f3";
  // The batch that took the last file, if it is the newest log record.
  auto allocated_last = [&]() -> std::optional<int64_t> {
    auto records = read_driver_log(job.ckpt);
    if (records.empty())
      return std::nullopt;
    auto alloc = allocation_of(records.back());
    if (!alloc
        || std::find(alloc->second.begin(), alloc->second.end(), last_file)
             == alloc->second.end())
      return std::nullopt;
    return alloc->first;
  };
  auto acted_on = [&] {
    auto batch = allocated_last();
    if (!batch)
      return false;
    for (auto& f : checkpoint_files(job.ckpt))
      if (checkpoint_of(f, *batch))
        return true;
    return false;
  };
  REQUIRE(job.await(acted_on));
  job.kill();
  REQUIRE(acted_on());
  auto batch = *allocated_last();
  auto torn = read_driver_log(job.ckpt).back();
  truncate_to(torn.segment, torn.offset + 9 + torn.length - 3);
  if (crashed_mid_append) {
    for (auto& f : checkpoint_files(job.ckpt))
      if (checkpoint_of(f, batch))
        fs::remove(f);
    fs::remove_all(job.out + "/" + std::to_string(batch));
  }
  auto& p = job.start();
  REQUIRE(job.await([&] { return occurrences(p.err(), "recovered from ") > 0; }));
  INFO(job.logs());
  CHECK_THAT(p.err(), Catch::Contains("driver log: " + torn.segment + ": cut "
                                      + std::to_string(9 + torn.length - 3)
                                      + " bytes at offset "
                                      + std::to_string(torn.offset)));
  if (crashed_mid_append) {
    CHECK(skipped_checkpoints(p.err()).empty());
  } else {
    // The checkpoints that count the batch as generated are passed over,
    // naming it: recovering from them would take its file as counted.
    CHECK_THAT(p.err(), Catch::Contains("needs the inputs of batch "
                                        + std::to_string(batch) + " ms"));
  }
  // Either way the file is counted once: it was never taken, or it is
  // taken again by the batch that replaces the lost one.
  job.add_file();
  REQUIRE(job.await_exact());
  p.signal(SIGTERM);
  CHECK(exited_with(p.wait(), 0));
  CHECK(job.newest_totals() == job.expected);
}

} // namespace

TEST_CASE("a restart cuts a batch allocation torn by a crash at the driver "
          "log's tail and says so and counts every file exactly once",
          "[process][recovery]") {
  torn_allocation(true);
}

TEST_CASE("a restart passes over checkpoints that need a damaged last driver "
          "log record and counts every file exactly once",
          "[process][recovery]") {
  torn_allocation(false);
}

// -- data checkpoint (state file) damage --------------------------------------------

TEST_CASE("a restart passes over checkpoints whose state file is damaged and "
          "recovers exactly from an older one whose state file is intact",
          "[process][recovery]") {
  // A data checkpoint every second batch: the kept metadata checkpoints
  // name more than one state file, so an older intact one is there.
  local_job job{{"--state-checkpoint-interval=400ms"}};
  job.start();
  for (int i = 0; i < 3; ++i)
    job.add_file();
  REQUIRE(job.await_exact());
  job.add_file();
  REQUIRE(job.await([&] { return named_state_files(job.ckpt).size() >= 2; }));
  job.kill();
  auto meta = newest_valid_checkpoint(job.ckpt);
  REQUIRE(meta.states.size() == 1);
  auto damaged = meta.states.front().file;
  flip_byte(damaged, fs::file_size(damaged) / 2);
  auto& p = job.start();
  REQUIRE(job.await([&] { return occurrences(p.err(), "recovered from ") > 0; }));
  INFO(job.logs());
  CHECK_THAT(p.err(), Catch::Contains(": its data checkpoint is unreadable: ")
                        && Catch::Contains(damaged));
  // It recovers from an older checkpoint (or one of the same batch time,
  // written earlier) naming another state file. Not necessarily an older
  // state: when batches overlap, the checkpoint written as batch t+1 starts
  // names the state before batch t's, which batch t's own checkpoint,
  // written later, names.
  std::smatch m;
  auto log = p.err();
  REQUIRE(std::regex_search(log, m, std::regex{"recovering from (\\S+) "}));
  auto used = decode_file(m[1].str());
  REQUIRE(used);
  REQUIRE(used->states.size() == 1);
  CHECK(used->checkpoint_time_ms <= meta.checkpoint_time_ms);
  CHECK(used->states.front().file != damaged);
  job.add_file();
  job.add_file();
  REQUIRE(job.await_exact());
  p.signal(SIGTERM);
  CHECK(exited_with(p.wait(), 0));
  CHECK(job.newest_totals() == job.expected);
}

TEST_CASE("a restart exits with code 1 naming the state file when no "
          "checkpoint has an intact state file and writes no output",
          "[process][recovery]") {
  local_job job{{"--state-checkpoint-interval=400ms"}};
  job.start();
  job.add_file();
  REQUIRE(job.await_exact());
  // Killed once no kept checkpoint is older than the first data checkpoint
  // (one from before it would recover from the first batch on, a valid
  // choice that needs no state file).
  auto every_checkpoint_names_state = [&] {
    auto all = decodable_checkpoints(job.ckpt);
    return all.size() >= sluice::default_checkpoint_keep
           && std::all_of(all.begin(), all.end(),
                          [](auto& meta) { return !meta.states.empty(); });
  };
  REQUIRE(job.await(every_checkpoint_names_state));
  job.kill();
  auto meta = newest_valid_checkpoint(job.ckpt);
  REQUIRE(meta.states.size() == 1);
  for (auto& e : fs::directory_iterator(job.ckpt + "/state"))
    if (e.is_regular_file())
      flip_byte(e.path().string(), e.file_size() / 2);
  auto written = file_sizes(job.out);
  auto& p = job.start();
  auto status = p.wait();
  INFO(job.logs());
  CHECK(exited_with(status, 1));
  CHECK_THAT(p.err(), Catch::Contains("no usable checkpoint in " + job.ckpt)
                        && Catch::Contains(meta.states.front().file + ": "));
  CHECK(file_sizes(job.out) == written);
}

// -- graceful stop ----------------------------------------------------------------------

TEST_CASE("a graceful stop while files keep arriving counts every file that "
          "arrived before SIGTERM and a restart re-runs no batch",
          "[process][recovery]") {
  local_job job{{"--sluice.stop-gracefully-on-shutdown=true"}};
  auto& p = job.start();
  for (int i = 0; i < 3; ++i)
    job.add_file();
  REQUIRE(job.await_exact());
  job.add_file();
  job.add_file();
  p.signal(SIGTERM);
  auto before_stop = job.files.size();
  // Files go on arriving while the driver stops, one per batch it completes.
  while (p.running() && job.files.size() < before_stop + 10) {
    job.add_file();
    auto seen = completed_batches(p);
    wait_until([&] { return !p.running() || completed_batches(p) > seen; },
               std::chrono::seconds{5});
  }
  auto status = p.wait();
  INFO(job.logs());
  CHECK(exited_with(status, 0));
  // The final totals are those of the files up to some point at or after
  // the SIGTERM, in arrival order: nothing from before it is missing and
  // no file is counted in part or twice.
  auto final_totals = job.newest_totals();
  std::optional<size_t> counted;
  word_totals prefix;
  for (size_t n = 0; n <= job.files.size(); ++n) {
    if (prefix == final_totals)
      counted = n;
    if (n < job.files.size())
      for (auto& [w, c] : job.files[n])
        prefix[w] += c;
  }
  REQUIRE(counted);
  CHECK(*counted >= before_stop);
  // The restart finds nothing left to do for the batches before the stop.
  auto& q = job.start();
  REQUIRE(job.await([&] { return occurrences(q.err(), "recovered from ") > 0; }));
  CHECK_THAT(q.err(), Catch::Contains(": 0 batches recomputed for state, 0 "
                                      "pending batches re-run"));
  job.add_file();
  REQUIRE(job.await_exact());
  q.signal(SIGTERM);
  CHECK(exited_with(q.wait(), 0));
  CHECK(job.newest_totals() == job.expected);
}

// -- a full disk under the receiver WAL --------------------------------------------------

namespace {

/// Writes `path` until the file system is full (ENOSPC), in ever smaller
/// pieces so that not even a page is left, and syncs it.
void fill_up(const std::string& path) {
  auto fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  std::string chunk(1 << 16, 'x');
  for (size_t n = chunk.size(); n > 0;) {
    auto written = ::write(fd, chunk.data(), n);
    if (written < 0 && errno == EINTR)
      continue;
    if (written < 0) {
      REQUIRE(errno == ENOSPC);
      n /= 2;
    }
  }
  ::fsync(fd);
  ::close(fd);
}

/// The largest file below `dir` and its size.
std::pair<std::string, uintmax_t> largest_file(const std::string& dir) {
  std::pair<std::string, uintmax_t> best{"", 0};
  for (auto& [path, size] : file_sizes(dir))
    if (size >= best.second)
      best = {path, size};
  return best;
}

} // namespace

TEST_CASE("a full disk under the receiver WAL holds blocks unreported until "
          "space returns and the text is then counted exactly once",
          "[process][recovery]") {
  temp_dir dir{"sluice-full-disk"};
  auto out = dir / "out";
  // Declared after `dir`, so it is unmounted before `dir` is removed.
  tmpfs_mount disk{dir / "disk", "4m"};
  auto ckpt = disk.mounted() ? dir / "disk/ckpt" : dir / "ckpt";
  // About 1.2 MB of text at 4000 lines/s: 10 s of stream, blocks of some
  // 24 KB (several pages each), still arriving while the disk is full.
  auto text = make_text(40000, 23);
  text_server server{text};
  std::vector<std::string> args{wordcount_binary(),
                                "--local=2",
                                "--source=socket://127.0.0.1:"
                                  + std::to_string(server.port()),
                                "--output=" + out,
                                "--batch-interval=200ms",
                                "--wal",
                                "--checkpoint=" + ckpt,
                                "--sluice.receiver.max-rate=4000",
                                "--sluice.stop-gracefully-on-shutdown=true"};
  std::function<void(pid_t)> fill;
  std::function<void(pid_t)> make_room;
  if (disk.mounted()) {
    fill = [&](pid_t) { fill_up(dir / "disk/filler"); };
    make_room = [&](pid_t) { fs::remove(dir / "disk/filler"); };
  } else {
    // No tmpfs (not root, or no mount namespace): a file size limit at the
    // receiver WAL's current size makes its next append fail (EFBIG) while
    // the smaller files (driver log, checkpoints, output) still fit; the
    // limit is lifted to make room. SIGXFSZ is ignored (inherited through
    // exec), so the write fails instead of killing the process.
    WARN("cannot mount a tmpfs (" << disk.error()
                                  << "): filling the disk with a file size limit");
    args.insert(args.begin(), {"/bin/sh", "-c", "trap '' XFSZ; exec \"$@\"", "sh"});
    fill = [&](pid_t pid) {
      auto wal = largest_file(ckpt + "/receiver-wal");
      REQUIRE(wal.second > 0);
      rlimit lim{};
      REQUIRE(::prlimit(pid, RLIMIT_FSIZE, nullptr, &lim) == 0);
      lim.rlim_cur = static_cast<rlim_t>(wal.second);
      REQUIRE(::prlimit(pid, RLIMIT_FSIZE, &lim, nullptr) == 0);
    };
    make_room = [&](pid_t pid) {
      rlimit lim{};
      REQUIRE(::prlimit(pid, RLIMIT_FSIZE, nullptr, &lim) == 0);
      lim.rlim_cur = lim.rlim_max;
      REQUIRE(::prlimit(pid, RLIMIT_FSIZE, &lim, nullptr) == 0);
    };
  }
  child_process p{args, dir.path(), "wordcount"};
  auto await = [&](const std::function<bool()>& cond,
                   std::chrono::milliseconds deadline = std::chrono::seconds{30}) {
    if (wait_until(cond, deadline))
      return true;
    UNSCOPED_INFO(p.err());
    return false;
  };
  // The WAL works: blocks are written and counted.
  REQUIRE(await([&] {
    auto records = batch_records(p.err(), 0);
    return std::any_of(records.begin(), records.end(), [](auto n) { return n > 0; });
  }));
  fill(p.pid());
  // The receiver says it cannot write, and that it holds and retries.
  size_t failed_at = std::string::npos;
  REQUIRE(await([&] {
    failed_at = p.err().find("cannot write block ");
    return failed_at != std::string::npos;
  }));
  CHECK_THAT(p.err().substr(failed_at), Catch::Contains(" to the WAL: ")
                                          && Catch::Contains("blocks are held and retried"));
  // Blocks reported before the failure may still be counted by the next
  // batches; then nothing is, although lines keep arriving: a block the WAL
  // does not hold is never reported.
  size_t held_from = 0;
  REQUIRE(await([&] {
    auto records = batch_records(p.err(), failed_at);
    if (records.size() < 3
        || !std::all_of(records.end() - 3, records.end(), [](auto r) { return r == 0; }))
      return false;
    held_from = records.size() - 3;
    return true;
  }));
  auto counted = read_word_totals(out);
  REQUIRE(await([&] {
    return batch_records(p.err(), failed_at).size() >= held_from + 10;
  }));
  auto after_failure = batch_records(p.err(), failed_at);
  std::vector<uint64_t> held(after_failure.begin() + static_cast<std::ptrdiff_t>(held_from),
                             after_failure.end());
  CHECK(held == std::vector<uint64_t>(held.size(), 0));
  CHECK(read_word_totals(out) == counted);
  auto expected = count_words(text);
  CHECK(counted != expected); // the held blocks are not counted yet
  CHECK(p.running());
  // Room again: the held blocks are written, reported and counted, once.
  make_room(p.pid());
  REQUIRE(await([&] {
    return p.err().find("the WAL accepts blocks again") != std::string::npos;
  }));
  REQUIRE(await([&] { return server.sent(); }, std::chrono::seconds{60}));
  bool exact = await([&] { return read_word_totals(out) == expected; },
                     std::chrono::seconds{60});
  auto got = read_word_totals(out);
  for (auto& [w, n] : expected) {
    INFO(w);
    CHECK(got[w] == n);
  }
  REQUIRE(exact);
  p.signal(SIGTERM);
  CHECK(exited_with(p.wait(), 0));
  CHECK(read_word_totals(out) == expected);
}
