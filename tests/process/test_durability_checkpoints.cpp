// Durability against damaged and missing checkpoint files, metadata and
// data (docs/recovery.md, docs/checkpoint_format.md), with real processes:
// wordcount is killed with SIGKILL, the test damages what it left on disk
// the way a bad disk or a careless hand would, and restarts it with the
// same options. Either the restart recovers exactly (saying what it passed
// over) or it stops with exit code 1 naming the file; it never silently
// drops input.

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <signal.h>

#include "runtime/checkpoint/checkpoint_dir.hpp"
#include "runtime/checkpoint/file_reader.hpp"
#include "runtime/checkpoint/metadata.hpp"
#include "tests/process/cluster.hpp"
#include "tests/process/durability.hpp"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

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
