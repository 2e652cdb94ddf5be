// Durability against a damaged or torn driver log (docs/recovery.md,
// docs/wal_format.md), with real processes: wordcount is killed with
// SIGKILL, the test damages what it left on disk the way a bad disk or a
// careless hand would, and restarts it with the same options. Either the
// restart recovers exactly (saying what it passed over) or it stops with
// exit code 1 naming the file; it never silently drops input.

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <signal.h>

#include <capnp/serialize.h>

#include "messages/driver_log.capnp.h"
#include "runtime/exec/planner.hpp"
#include "tests/process/cluster.hpp"
#include "tests/process/durability.hpp"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

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

} // namespace

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
