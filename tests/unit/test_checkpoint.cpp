#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/checkpoint/checkpoint.hpp"
#include "runtime/checkpoint/file_reader.hpp"
#include "runtime/error.hpp"
#include "tests/support/helpers.hpp"

using namespace sluice;
using sluice::test::temp_dir;
namespace fs = std::filesystem;

namespace {

/// A checkpoint with a value in every field, for batch time `t`.
checkpoint_metadata sample_meta(int64_t t) {
  checkpoint_metadata m;
  m.checkpoint_time_ms = t;
  m.batch_interval_ms = 1000;
  m.graph_fingerprint = 0xfedcba9876543210ULL;
  m.operators = {{"lines", "socket_text_stream", 1000, 1000, false, 0},
                 {"app/counts:1", "update_state_by_key", 1000, 1000, true,
                  10000},
                 {"top", "reduce_by_key_and_window", 5000, 30000, true, 10000}};
  m.last_completed_ms = t - 2000;
  m.last_generated_ms = t;
  m.pending_ms = {t - 1000, t};
  m.recovery_horizon_ms = t - 3000;
  m.states = {{"app/counts:1", t - 1000, "state/x-1.state", 4},
              {"top", t - 5000, "state/top-1.state", 2}};
  m.directories = {{"files", {"a.txt", "b c.txt", "\xc3\xa9t\xc3\xa9.log"}},
                   {"empty", {}}};
  m.config = {{"sluice.batch-interval", "1s"},
              {"sluice.checkpoint.dir", "/tmp/x=y"},
              {"empty", ""}};
  m.written_at_ms = 1700000000123;
  return m;
}

std::string message(const caf::error& err) {
  return describe(err);
}

bool has_code(const caf::error& err, errc code) {
  return err && err.category() == error_category()
         && err.code() == static_cast<uint8_t>(code);
}

std::string bytes_of(const std::string& path) {
  return test::read_file(path);
}

void flip_byte(const std::string& path, size_t offset) {
  auto content = bytes_of(path);
  REQUIRE(offset < content.size());
  content[offset] = static_cast<char>(content[offset] ^ 0x5a);
  test::write_file(path, content);
}

void truncate_file(const std::string& path, size_t size) {
  fs::resize_file(path, size);
}

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> result;
  for (auto& e : fs::directory_iterator{dir})
    result.insert(e.path().filename().string());
  return result;
}

buffer read_buffer(const std::string& path) {
  auto bytes = read_whole_file(path, 1 << 20);
  REQUIRE(bytes);
  return *bytes;
}

/// A state partition holding `text` (padded to 8-byte words like a block).
state_partition partition(const std::string& text, uint64_t records) {
  return {buffer::copy_of(text.data(), text.size()), records};
}

std::string text_of(const buffer& b) {
  return std::string{b.view()};
}

} // namespace

// -- CRC ----------------------------------------------------------------------

// -- metadata encoding ----------------------------------------------------------

TEST_CASE("A metadata checkpoint with every field survives encode and decode",
          "[checkpoint]") {
  auto meta = sample_meta(1700000004000);
  auto bytes = encode_checkpoint(meta);
  REQUIRE(bytes.size() > checkpoint_header_size);
  CHECK(bytes.view().substr(0, 8) == "SLUICECK");
  auto back = decode_checkpoint(bytes, "mem");
  REQUIRE(back);
  CHECK(back->format_version == checkpoint_format_version);
  CHECK(*back == meta);
}

TEST_CASE("A metadata checkpoint with only defaults round trips to defaults",
          "[checkpoint]") {
  checkpoint_metadata meta;
  auto back = decode_checkpoint(encode_checkpoint(meta), "mem");
  REQUIRE(back);
  CHECK(*back == meta);
  CHECK(back->last_completed_ms == -1);
  CHECK(back->last_generated_ms == -1);
  CHECK(back->recovery_horizon_ms == -1);
}

TEST_CASE("encode_checkpoint always writes the current format version",
          "[checkpoint]") {
  auto meta = sample_meta(5000);
  meta.format_version = 1;
  auto back = decode_checkpoint(encode_checkpoint(meta), "mem");
  REQUIRE(back);
  CHECK(back->format_version == checkpoint_format_version);
}

TEST_CASE("decode_checkpoint names the file and what is wrong with it",
          "[checkpoint]") {
  auto good = encode_checkpoint(sample_meta(5000));
  auto damaged = [&](size_t offset, uint8_t mask) {
    auto copy = std::string{good.view()};
    copy[offset] = static_cast<char>(copy[offset] ^ mask);
    return buffer::copy_of(copy.data(), copy.size());
  };
  auto expect = [](const buffer& bytes, const std::string& why) {
    auto meta = decode_checkpoint(bytes, "/ck/checkpoint-5000");
    REQUIRE_FALSE(meta);
    CHECK(has_code(meta.error(), errc::corrupt_data));
    CHECK_THAT(message(meta.error()), Catch::Contains("/ck/checkpoint-5000: ")
                                        && Catch::Contains(why));
  };
  SECTION("empty") {
    expect(buffer{}, "truncated");
  }
  SECTION("shorter than the header") {
    expect(buffer::copy_of(good.data(), 10), "truncated");
  }
  SECTION("a flipped magic byte") {
    expect(damaged(3, 0x01), "bad magic");
  }
  SECTION("a flipped version byte") {
    expect(damaged(8, 0x02), "CRC mismatch");
  }
  SECTION("a flipped flags byte") {
    expect(damaged(13, 0x01), "CRC mismatch");
  }
  SECTION("a flipped length byte") {
    expect(damaged(16, 0x08), "the header announces");
  }
  SECTION("a flipped CRC byte") {
    expect(damaged(21, 0x10), "CRC mismatch");
  }
  SECTION("a flipped body byte") {
    expect(damaged(good.size() - 3, 0x40), "CRC mismatch");
  }
  SECTION("cut off in the body") {
    expect(buffer::copy_of(good.data(), good.size() - 8), "truncated");
  }
  SECTION("bytes after the body") {
    auto longer = std::string{good.view()} + std::string(8, '\0');
    expect(buffer::copy_of(longer.data(), longer.size()),
           "8 bytes after the end");
  }
}

TEST_CASE("Every single flipped byte of a checkpoint file is detected",
          "[checkpoint]") {
  auto good = std::string{encode_checkpoint(sample_meta(5000)).view()};
  for (size_t i = 0; i < good.size(); ++i) {
    auto copy = good;
    copy[i] = static_cast<char>(copy[i] ^ 0x01);
    auto meta = decode_checkpoint(buffer::copy_of(copy.data(), copy.size()),
                                  "f");
    INFO("offset " << i);
    CHECK_FALSE(meta);
  }
}

TEST_CASE("A checkpoint from a newer format version is refused by name",
          "[checkpoint]") {
  auto copy = std::string{encode_checkpoint(sample_meta(5000)).view()};
  auto* bytes = reinterpret_cast<uint8_t*>(copy.data());
  bytes[8] = 3; // version 3, with a CRC that matches it
  auto crc = crc32c(bytes, 20);
  crc = crc32c_extend(crc, bytes + 24, copy.size() - 24);
  for (int i = 0; i < 4; ++i)
    bytes[20 + i] = static_cast<uint8_t>(crc >> (8 * i));
  auto meta = decode_checkpoint(buffer::copy_of(copy.data(), copy.size()),
                                "f");
  REQUIRE_FALSE(meta);
  CHECK_THAT(message(meta.error()), Catch::Contains("f: format version 3 is "
                                                    "newer than this build"));
}

TEST_CASE("A checkpoint body that is not Cap'n Proto is refused as corrupt",
          "[checkpoint]") {
  // A valid frame around 16 bytes of garbage: the CRC matches, the
  // decoder must still not crash or throw.
  std::string file(24 + 16, '\0');
  auto* bytes = reinterpret_cast<uint8_t*>(file.data());
  std::copy_n("SLUICECK", 8, file.begin());
  bytes[8] = 2;
  bytes[16] = 16;
  for (size_t i = 24; i < file.size(); ++i)
    bytes[i] = 0xff;
  auto crc = crc32c(bytes, 20);
  crc = crc32c_extend(crc, bytes + 24, 16);
  for (int i = 0; i < 4; ++i)
    bytes[20 + i] = static_cast<uint8_t>(crc >> (8 * i));
  auto meta = decode_checkpoint(buffer::copy_of(file.data(), file.size()),
                                "g");
  REQUIRE_FALSE(meta);
  CHECK(has_code(meta.error(), errc::corrupt_data));
  CHECK_THAT(message(meta.error()), Catch::Contains("g: undecodable body"));
}

// -- the checkpoint directory ---------------------------------------------------

TEST_CASE("Checkpoint file names parse only in their canonical form",
          "[checkpoint]") {
  CHECK(checkpoint_file_name(5000, 0) == "checkpoint-5000");
  CHECK(checkpoint_file_name(5000, 2) == "checkpoint-5000-2");
  using key = std::pair<int64_t, uint32_t>;
  CHECK(parse_checkpoint_file_name("checkpoint-5000") == key{5000, 0});
  CHECK(parse_checkpoint_file_name("checkpoint-0") == key{0, 0});
  CHECK(parse_checkpoint_file_name("checkpoint-5000-2") == key{5000, 2});
  for (auto bad : {"checkpoint-", "checkpoint-05000", "checkpoint-5000-0",
                   "checkpoint-5000-", "checkpoint--5", "checkpoint-5x",
                   "checkpoint-5000.123.0.tmp", "checkpoint-5000-1-1",
                   "checkpoint-99999999999999999999", "state", "x"})
    CHECK_FALSE(parse_checkpoint_file_name(bad));
}

TEST_CASE("Writing twelve checkpoints keeps the newest ten and loads the newest",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  checkpoint_dir dir{tmp / "ck"}; // created by the first write
  for (int64_t t = 1000; t <= 12000; t += 1000)
    REQUIRE_FALSE(dir.write(sample_meta(t)));
  auto files = dir.files();
  REQUIRE(files.size() == 10);
  CHECK(files.front() == tmp / "ck/checkpoint-12000");
  CHECK(files.back() == tmp / "ck/checkpoint-3000");
  std::set<std::string> expected;
  for (int64_t t = 3000; t <= 12000; t += 1000)
    expected.insert("checkpoint-" + std::to_string(t));
  CHECK(names_in(tmp / "ck") == expected);
  auto loaded = dir.load_newest();
  REQUIRE(loaded);
  REQUIRE(*loaded);
  CHECK((*loaded)->file == tmp / "ck/checkpoint-12000");
  CHECK((*loaded)->meta == sample_meta(12000));
  CHECK((*loaded)->skipped.empty());
}

TEST_CASE("A second checkpoint for the same batch gets a sequence number and "
          "is loaded first",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  checkpoint_dir dir{tmp.path()};
  auto first = sample_meta(4000);
  auto second = sample_meta(4000);
  second.last_completed_ms = 4000;
  second.pending_ms.clear();
  REQUIRE_FALSE(dir.write(sample_meta(3000)));
  REQUIRE_FALSE(dir.write(first));
  REQUIRE_FALSE(dir.write(second));
  CHECK(dir.files()
        == std::vector<std::string>{tmp / "checkpoint-4000-1",
                                    tmp / "checkpoint-4000",
                                    tmp / "checkpoint-3000"});
  auto loaded = dir.load_newest();
  REQUIRE(loaded);
  REQUIRE(*loaded);
  CHECK((*loaded)->file == tmp / "checkpoint-4000-1");
  CHECK((*loaded)->meta == second);
}

TEST_CASE("A damaged newest checkpoint is skipped for the previous one with "
          "the reason",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  checkpoint_dir dir{tmp.path()};
  for (int64_t t = 1000; t <= 3000; t += 1000)
    REQUIRE_FALSE(dir.write(sample_meta(t)));
  auto newest = tmp / "checkpoint-3000";
  auto size = fs::file_size(newest);
  std::string why;
  SECTION("a flipped header byte") {
    flip_byte(newest, 10);
    why = "CRC mismatch";
  }
  SECTION("a flipped magic byte") {
    flip_byte(newest, 0);
    why = "bad magic";
  }
  SECTION("a flipped CRC byte") {
    flip_byte(newest, 22);
    why = "CRC mismatch";
  }
  SECTION("a flipped body byte") {
    flip_byte(newest, size / 2 + 12);
    why = "CRC mismatch";
  }
  SECTION("truncated in the body") {
    truncate_file(newest, size - 100);
    why = "truncated";
  }
  SECTION("truncated in the header") {
    truncate_file(newest, 7);
    why = "truncated";
  }
  SECTION("truncated to nothing") {
    truncate_file(newest, 0);
    why = "truncated";
  }
  auto loaded = dir.load_newest();
  REQUIRE(loaded);
  REQUIRE(*loaded);
  CHECK((*loaded)->file == tmp / "checkpoint-2000");
  CHECK((*loaded)->meta == sample_meta(2000));
  REQUIRE((*loaded)->skipped.size() == 1);
  CHECK_THAT((*loaded)->skipped[0],
             Catch::StartsWith(newest + ": ") && Catch::Contains(why));
}

TEST_CASE("A deleted newest checkpoint leaves the previous one to load",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  checkpoint_dir dir{tmp.path()};
  for (int64_t t = 1000; t <= 3000; t += 1000)
    REQUIRE_FALSE(dir.write(sample_meta(t)));
  fs::remove(tmp / "checkpoint-3000");
  auto loaded = dir.load_newest();
  REQUIRE(loaded);
  REQUIRE(*loaded);
  CHECK((*loaded)->file == tmp / "checkpoint-2000");
  CHECK((*loaded)->skipped.empty());
}

TEST_CASE("A checkpoint whose name and content disagree on the batch is "
          "skipped",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  checkpoint_dir dir{tmp.path()};
  REQUIRE_FALSE(dir.write(sample_meta(1000)));
  REQUIRE_FALSE(dir.write(sample_meta(2000)));
  fs::rename(tmp / "checkpoint-2000", tmp / "checkpoint-9000");
  auto loaded = dir.load_newest();
  REQUIRE(loaded);
  REQUIRE(*loaded);
  CHECK((*loaded)->file == tmp / "checkpoint-1000");
  REQUIRE((*loaded)->skipped.size() == 1);
  CHECK((*loaded)->skipped[0]
        == tmp / "checkpoint-9000"
             + ": named for batch 9000 but holds batch 2000");
}

TEST_CASE("When every checkpoint is corrupt load_newest fails naming each file",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  checkpoint_dir dir{tmp.path()};
  for (int64_t t = 1000; t <= 3000; t += 1000)
    REQUIRE_FALSE(dir.write(sample_meta(t)));
  flip_byte(tmp / "checkpoint-1000", 30);
  truncate_file(tmp / "checkpoint-2000", 3);
  test::write_file(tmp / "checkpoint-3000", "not a checkpoint at all");
  auto loaded = dir.load_newest();
  REQUIRE_FALSE(loaded);
  CHECK(has_code(loaded.error(), errc::corrupt_data));
  auto what = message(loaded.error());
  CHECK_THAT(what, Catch::Contains("no valid checkpoint in " + tmp.path()));
  CHECK_THAT(what, Catch::Contains(tmp / "checkpoint-1000: CRC mismatch"));
  CHECK_THAT(what, Catch::Contains(tmp / "checkpoint-2000: truncated"));
  CHECK_THAT(what, Catch::Contains(tmp / "checkpoint-3000: bad magic"));
}

TEST_CASE("load_newest passes over checkpoints the caller cannot use and "
          "names each with the caller's reason",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  checkpoint_dir dir{tmp.path()};
  for (int64_t t = 1000; t <= 3000; t += 1000)
    REQUIRE_FALSE(dir.write(sample_meta(t)));
  flip_byte(tmp / "checkpoint-3000", 30);
  // The caller sees only checkpoints that validate, newest first.
  std::vector<int64_t> asked;
  auto refuse_2000 = [&](const checkpoint_metadata& meta, const std::string&) {
    asked.push_back(meta.checkpoint_time_ms);
    return meta.checkpoint_time_ms == 2000 ? std::string{"its state is gone"}
                                           : std::string{};
  };
  auto loaded = dir.load_newest(refuse_2000);
  REQUIRE(loaded);
  REQUIRE(*loaded);
  CHECK((*loaded)->file == tmp / "checkpoint-1000");
  CHECK(asked == std::vector<int64_t>{2000, 1000});
  REQUIRE((*loaded)->skipped.size() == 2);
  CHECK_THAT((*loaded)->skipped[0],
             Catch::StartsWith(tmp / "checkpoint-3000: CRC mismatch"));
  CHECK((*loaded)->skipped[1] == tmp / "checkpoint-2000: its state is gone");
  // Refusing every one that validates is an error naming every file.
  auto none = dir.load_newest([](const checkpoint_metadata&, const std::string&) {
    return std::string{"no"};
  });
  REQUIRE_FALSE(none);
  CHECK(has_code(none.error(), errc::corrupt_data));
  auto what = message(none.error());
  CHECK_THAT(what, Catch::Contains("no usable checkpoint in " + tmp.path()));
  CHECK_THAT(what, Catch::Contains(tmp / "checkpoint-3000: CRC mismatch"));
  CHECK_THAT(what, Catch::Contains(tmp / "checkpoint-2000: no"));
  CHECK_THAT(what, Catch::Contains(tmp / "checkpoint-1000: no"));
}

TEST_CASE("An empty or missing checkpoint directory loads nothing",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  SECTION("empty") {
    checkpoint_dir dir{tmp.path()};
    auto loaded = dir.load_newest();
    REQUIRE(loaded);
    CHECK_FALSE(*loaded);
    CHECK(dir.files().empty());
  }
  SECTION("missing") {
    checkpoint_dir dir{tmp / "nope"};
    auto loaded = dir.load_newest();
    REQUIRE(loaded);
    CHECK_FALSE(*loaded);
  }
  SECTION("only other files and a stray temporary") {
    test::write_file(tmp / "checkpoint-5000.77.0.tmp", "half");
    test::write_file(tmp / "README", "x");
    fs::create_directory(tmp / "state");
    checkpoint_dir dir{tmp.path()};
    auto loaded = dir.load_newest();
    REQUIRE(loaded);
    CHECK_FALSE(*loaded);
  }
}

TEST_CASE("A stray temporary file is ignored and reported in skipped",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  checkpoint_dir dir{tmp.path()};
  REQUIRE_FALSE(dir.write(sample_meta(1000)));
  // What a crash between write and rename leaves, newer than the newest.
  test::write_file(tmp / "checkpoint-2000.4242.0.tmp", "SLUICECK torn");
  auto loaded = dir.load_newest();
  REQUIRE(loaded);
  REQUIRE(*loaded);
  CHECK((*loaded)->file == tmp / "checkpoint-1000");
  REQUIRE((*loaded)->skipped.size() == 1);
  CHECK_THAT((*loaded)->skipped[0],
             Catch::StartsWith(tmp / "checkpoint-2000.4242.0.tmp: ")
               && Catch::Contains("temporary"));
  CHECK(dir.files() == std::vector<std::string>{tmp / "checkpoint-1000"});
}

TEST_CASE("A failed checkpoint write reports the file and leaves no temporary",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  test::write_file(tmp / "plain-file", "x");
  checkpoint_dir dir{tmp / "plain-file"};
  auto err = dir.write(sample_meta(1000));
  REQUIRE(err);
  CHECK(has_code(err, errc::io_failed));
  CHECK_THAT(message(err), Catch::Contains(tmp / "plain-file"));
  CHECK(names_in(tmp.path()) == std::set<std::string>{"plain-file"});
}

// -- state files -----------------------------------------------------------------

TEST_CASE("State file names percent-encode node ids and parse back",
          "[checkpoint]") {
  CHECK(state_file_name("counts", 5000) == "counts-5000.state");
  CHECK(state_file_name("app/counts:1", 5000)
        == "app%2Fcounts%3A1-5000.state");
  CHECK(state_file_name("a-b.c%", 0) == "a%2Db%2Ec%25-0.state");
  for (std::string id : {"counts", "app/counts:1", "a-b.c%", "", "../..",
                         "\xff\x01 x", "UPPER_lower_09"}) {
    auto name = state_file_name(id, 1700000000000);
    CHECK(name.find('/') == std::string::npos);
    auto key = parse_state_file_name(name);
    REQUIRE(key);
    CHECK(key->node_id == id);
    CHECK(key->batch_ms == 1700000000000);
  }
  for (auto bad : {"counts-5000", "counts.state", "counts-x.state",
                   "counts-05.state", "a%2f-5.state", "a%4-5.state",
                   "%41-5.state", "a.b-5.state",
                   "counts-5000.state.1.0.tmp"})
    CHECK_FALSE(parse_state_file_name(bad));
  checkpoint_dir dir{"/ck/"};
  CHECK(dir.state_path("app/counts:1", 7)
        == "/ck/state/app%2Fcounts%3A1-7.state");
}

TEST_CASE("A state checkpoint survives a write and read with its partitions",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  checkpoint_dir dir{tmp.path()};
  auto path = dir.state_path("app/counts:1", 5000); // state/ is created
  std::vector<state_partition> parts{partition("first partition.", 3),
                                     partition("", 0),
                                     partition(std::string(100000, 'x'), 7)};
  REQUIRE_FALSE(write_state_checkpoint(path, "app/counts:1", 5000, parts));
  CHECK(names_in(tmp / "state")
        == std::set<std::string>{"app%2Fcounts%3A1-5000.state"});
  auto back = read_state_checkpoint(path, "app/counts:1", 5000);
  REQUIRE(back);
  REQUIRE(back->size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(text_of((*back)[i].bytes) == text_of(parts[i].bytes));
    CHECK((*back)[i].records == parts[i].records);
    CHECK(reinterpret_cast<uintptr_t>((*back)[i].bytes.data()) % 8 == 0);
  }
  SECTION("no partitions at all") {
    REQUIRE_FALSE(write_state_checkpoint(path, "app/counts:1", 5000, {}));
    auto none = read_state_checkpoint(path, "app/counts:1", 5000);
    REQUIRE(none);
    CHECK(none->empty());
  }
}

TEST_CASE("A damaged or mismatched state checkpoint fails naming the file",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  auto path = tmp / "state/n-5000.state";
  REQUIRE_FALSE(write_state_checkpoint(
    path, "n", 5000, {partition("abcdefgh", 1), partition("ijklmnop", 2)}));
  auto size = fs::file_size(path);
  std::string node = "n";
  int64_t batch = 5000;
  std::string why;
  errc code = errc::corrupt_data;
  SECTION("a flipped magic byte") {
    flip_byte(path, 1);
    why = "bad magic";
  }
  SECTION("a flipped batch byte in the header") {
    flip_byte(path, 17);
    why = "CRC mismatch";
  }
  SECTION("a flipped partition length") {
    flip_byte(path, 29);
    why = "truncated";
  }
  SECTION("a flipped record count") {
    flip_byte(path, 29 + 8);
    why = "CRC mismatch";
  }
  SECTION("a flipped partition byte") {
    flip_byte(path, size - 6);
    why = "CRC mismatch";
  }
  SECTION("a flipped CRC byte") {
    flip_byte(path, size - 1);
    why = "CRC mismatch";
  }
  SECTION("truncated in a partition") {
    truncate_file(path, size - 7);
    why = "truncated";
  }
  SECTION("truncated in the header") {
    truncate_file(path, 30);
    why = "truncated";
  }
  SECTION("trailing bytes") {
    test::write_file(path, bytes_of(path) + "x");
    why = "1 bytes after the end";
  }
  SECTION("another node") {
    node = "m";
    why = "holds node 'n' batch 5000, expected node 'm' batch 5000";
  }
  SECTION("another batch") {
    batch = 6000;
    why = "holds node 'n' batch 5000, expected node 'n' batch 6000";
  }
  SECTION("missing") {
    fs::remove(path);
    code = errc::not_found;
    why = "No such file";
  }
  auto parts = read_state_checkpoint(path, node, batch);
  REQUIRE_FALSE(parts);
  CHECK(has_code(parts.error(), code));
  CHECK_THAT(message(parts.error()),
             Catch::Contains(path) && Catch::Contains(why));
}

TEST_CASE("Every single flipped byte of a state checkpoint is detected",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  auto path = tmp / "s.state";
  REQUIRE_FALSE(write_state_checkpoint(
    path, "node/1", 5000, {partition("abcdefgh", 1), partition("", 0)}));
  auto good = bytes_of(path);
  for (size_t i = 0; i < good.size(); ++i) {
    auto copy = good;
    copy[i] = static_cast<char>(copy[i] ^ 0x01);
    test::write_file(path, copy);
    INFO("offset " << i);
    CHECK_FALSE(read_state_checkpoint(path, "node/1", 5000));
  }
}

TEST_CASE("State cleanup keeps files referenced by kept checkpoints and newer "
          "ones",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  checkpoint_dir dir{tmp.path(), 3};
  const std::string a = "app/a:1";
  const std::string c = "c";
  auto write_state = [&](const std::string& node, int64_t batch) {
    REQUIRE_FALSE(write_state_checkpoint(dir.state_path(node, batch), node,
                                         batch, {partition("s", 1)}));
  };
  for (int64_t b = 1000; b <= 6000; b += 1000)
    write_state(a, b);
  write_state(c, 1000);
  write_state(c, 2000);
  write_state("unreferenced", 1000);
  auto checkpoint = [&](int64_t t,
                        std::vector<std::pair<std::string, int64_t>> refs) {
    auto meta = sample_meta(t);
    meta.states.clear();
    for (auto& [node, batch] : refs)
      meta.states.push_back({node, batch, dir.state_path(node, batch), 1});
    REQUIRE_FALSE(dir.write(meta));
  };
  checkpoint(1000, {{a, 1000}});
  checkpoint(2000, {{a, 1000}});
  checkpoint(3000, {{a, 3000}, {c, 2000}});
  checkpoint(4000, {{a, 3000}, {c, 2000}});
  // Crash leftovers: temporaries of an old and of a new state file, of an
  // old and of a new metadata checkpoint.
  auto a_name = [&](int64_t b) { return state_file_name(a, b); };
  test::write_file(tmp / "state/" + a_name(1000) + ".99.0.tmp", "x");
  test::write_file(tmp / "state/" + a_name(7000) + ".99.1.tmp", "x");
  test::write_file(tmp / "checkpoint-1000.99.2.tmp", "x");
  test::write_file(tmp / "checkpoint-9000.99.3.tmp", "x");
  checkpoint(5000, {{a, 4000}, {c, 2000}});
  // Kept: 3000, 4000, 5000; oldest references: a at 3000, c at 2000.
  CHECK(names_in(tmp.path())
        == std::set<std::string>{"checkpoint-3000", "checkpoint-4000",
                                 "checkpoint-5000", "checkpoint-9000.99.3.tmp",
                                 "state"});
  CHECK(names_in(tmp / "state")
        == std::set<std::string>{a_name(3000), a_name(4000), a_name(5000),
                                 a_name(6000), a_name(7000) + ".99.1.tmp",
                                 state_file_name(c, 2000),
                                 state_file_name("unreferenced", 1000)});
  for (int64_t b = 3000; b <= 6000; b += 1000)
    CHECK(read_state_checkpoint(dir.state_path(a, b), a, b));
}

TEST_CASE("References of a corrupt kept checkpoint do not hold back state "
          "cleanup",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  checkpoint_dir dir{tmp.path(), 2};
  auto write = [&](int64_t t, int64_t ref) {
    REQUIRE_FALSE(write_state_checkpoint(dir.state_path("s", ref), "s", ref,
                                         {partition("s", 1)}));
    auto meta = sample_meta(t);
    meta.states = {{"s", ref, dir.state_path("s", ref), 1}};
    REQUIRE_FALSE(dir.write(meta));
  };
  write(1000, 1000);
  write(2000, 2000);
  flip_byte(tmp / "checkpoint-2000", 40);
  write(3000, 3000);
  // Kept: 2000 (corrupt) and 3000: only 3000 counts, so the state of 1000
  // and 2000 go; 1000's checkpoint is gone, 2000's cannot be loaded.
  CHECK(names_in(tmp / "state")
        == std::set<std::string>{state_file_name("s", 3000)});
  auto loaded = dir.load_newest();
  REQUIRE(loaded);
  REQUIRE(*loaded);
  CHECK((*loaded)->file == tmp / "checkpoint-3000");
}

// -- schema evolution ---------------------------------------------------------

TEST_CASE("The version 1 fixture decodes with the current code and defaults "
          "for newer fields",
          "[checkpoint]") {
  // Written by tests/fixtures/make_checkpoint_v1.cpp with the version 1
  // schema (tests/fixtures/checkpoint_v1.capnp); committed, never rewritten.
  auto fixture = std::string{SLUICE_SOURCE_DIR}
                 + "/tests/fixtures/checkpoint-v1.bin";
  auto bytes = read_buffer(fixture);
  auto meta = decode_checkpoint(bytes, fixture);
  REQUIRE(meta);
  CHECK(meta->format_version == 1);
  CHECK(meta->checkpoint_time_ms == 1700000004000);
  CHECK(meta->batch_interval_ms == 1000);
  CHECK(meta->graph_fingerprint == 0x0123456789abcdefULL);
  REQUIRE(meta->operators.size() == 3);
  CHECK(meta->operators[0]
        == checkpoint_operator{"lines", "socket_text_stream", 1000, 1000,
                               false, 0});
  CHECK(meta->operators[1]
        == checkpoint_operator{"app/counts:1", "update_state_by_key", 1000,
                               1000, true, 10000});
  CHECK(meta->operators[2]
        == checkpoint_operator{"top", "reduce_by_key_and_window", 5000, 30000,
                               true, 10000});
  CHECK(meta->last_completed_ms == 1700000002000);
  CHECK(meta->last_generated_ms == 1700000004000);
  CHECK(meta->pending_ms == std::vector<int64_t>{1700000003000, 1700000004000});
  REQUIRE(meta->states.size() == 2);
  CHECK(meta->states[0]
        == state_checkpoint_ref{"app/counts:1", 1700000000000,
                                "/ck/state/app%2Fcounts%3A1-1700000000000.state",
                                4});
  CHECK(meta->states[1]
        == state_checkpoint_ref{"top", 1699999995000,
                                "/ck/state/top-1699999995000.state", 2});
  REQUIRE(meta->directories.size() == 1);
  CHECK(meta->directories[0]
        == directory_position{"files", {"a.txt", "b.txt"}});
  // Fields version 2 added read their defaults.
  CHECK(meta->recovery_horizon_ms == -1);
  CHECK(meta->config.empty());
  CHECK(meta->written_at_ms == 0);
  SECTION("and loads from a checkpoint directory") {
    temp_dir tmp{"sluice-ckpt"};
    fs::copy_file(fixture, tmp / "checkpoint-1700000004000");
    checkpoint_dir dir{tmp.path()};
    auto loaded = dir.load_newest();
    REQUIRE(loaded);
    REQUIRE(*loaded);
    CHECK((*loaded)->meta == *meta);
  }
}
