// The block store's storage levels without actors: the memory budget, LRU
// spilling of disk-level blocks to files, reads of spilled blocks, damaged
// spill files, and partitions kept as typed records.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/block.hpp"
#include "runtime/block_store.hpp"
#include "runtime/disk_store.hpp"
#include "runtime/exec/task_context.hpp"
#include "tests/support/counted.hpp"
#include "tests/support/helpers.hpp"

using namespace sluice;
using namespace sluice::test;

namespace fs = std::filesystem;

namespace {

using strings = std::vector<std::string>;

constexpr auto disk_ser = storage_level::memory_and_disk_ser();

stored_block block_of(strings xs) {
  auto n = xs.size();
  return stored_block{make_block(xs), n};
}

/// A block of one record of `n` copies of `c`: blocks of equal `n` have
/// equal sizes.
stored_block filler(char c, size_t n = 1000) {
  return block_of({std::string(n, c)});
}

block_store_options budget(uint64_t bytes, const std::string& local_dir = "") {
  block_store_options opts;
  opts.memory_budget = bytes;
  opts.local_dir = local_dir;
  opts.tag = "test";
  return opts;
}

size_t files_in(const std::string& dir) {
  if (dir.empty() || !fs::exists(dir))
    return 0;
  return static_cast<size_t>(std::distance(fs::directory_iterator{dir},
                                           fs::directory_iterator{}));
}

strings read_strings(const stored_block& b) {
  return read_block<std::string>(b.bytes);
}

std::vector<counted> counted_records(int64_t n) {
  std::vector<counted> xs;
  for (int64_t i = 0; i < n; ++i)
    xs.push_back(counted{i * 7});
  return xs;
}

bool is(const caf::error& err, errc code) {
  return err && err.category() == error_category()
         && err.code() == static_cast<uint8_t>(code);
}

} // namespace

TEST_CASE("disk-level blocks stay in memory while the store is within its budget",
          "[block_store][spill]") {
  auto size = filler('a').bytes.size();
  block_store store{budget(10 * size)};
  store.put("a", filler('a'), disk_ser);
  store.put("b", filler('b'), storage_level::memory_and_disk_ser_2());
  CHECK_FALSE(store.on_disk("a"));
  CHECK_FALSE(store.on_disk("b"));
  auto st = store.statistics();
  CHECK(st.blocks == 2);
  CHECK(st.memory_bytes == 2 * size);
  CHECK(st.disk_blocks == 0);
  CHECK(st.spills == 0);
  CHECK(store.spill_dir().empty()); // no directory until something spills
}

TEST_CASE("a put over the budget spills the least recently used disk-level blocks to files",
          "[block_store][spill]") {
  auto size = filler('a').bytes.size();
  block_store store{budget(2 * size + size / 2)}; // room for two blocks
  store.put("a", filler('a'), disk_ser);
  store.put("b", filler('b'), disk_ser);
  REQUIRE(store.get("a")); // a is now used more recently than b
  store.put("c", filler('c'), disk_ser);
  CHECK(store.on_disk("b"));
  CHECK_FALSE(store.on_disk("a"));
  CHECK_FALSE(store.on_disk("c"));
  auto st = store.statistics();
  CHECK(st.memory_bytes == 2 * size);
  CHECK(st.disk_blocks == 1);
  CHECK(st.disk_bytes == size + disk_store::header_size);
  CHECK(st.spills == 1);
  CHECK(files_in(store.spill_dir()) == 1);
  // Least recently used is now a (read before c was put).
  store.put("d", filler('d'), disk_ser);
  CHECK(store.on_disk("a"));
  CHECK_FALSE(store.on_disk("c"));
  CHECK_FALSE(store.on_disk("d"));
  CHECK(store.statistics().spills == 2);
  CHECK(files_in(store.spill_dir()) == 2);
  CHECK(store.bytes() == 2 * size);
}

TEST_CASE("a block larger than the whole budget goes straight to disk",
          "[block_store][spill]") {
  block_store store{budget(1)};
  store.put("big", filler('x'), disk_ser);
  CHECK(store.on_disk("big"));
  CHECK(store.bytes() == 0);
}

TEST_CASE("a spilled block reads back with the same records and counts as a disk read",
          "[block_store][spill]") {
  block_store store{budget(1)};
  strings xs{"first", "", std::string(3000, 'z'), "last"};
  store.put("c/1/1000/0", block_of(xs), disk_ser);
  REQUIRE(store.on_disk("c/1/1000/0"));
  auto got = store.get("c/1/1000/0");
  INFO((got ? "" : describe(got.error())));
  REQUIRE(got);
  CHECK(got->records == 4);
  CHECK_FALSE(got->typed);
  CHECK(read_strings(*got) == xs);
  auto encoded = store.get_encoded("c/1/1000/0");
  REQUIRE(encoded);
  CHECK(read_strings(*encoded) == xs);
  CHECK(store.statistics().disk_reads == 2);
  // A spilled block stays on disk: reads do not bring it back.
  CHECK(store.on_disk("c/1/1000/0"));
  CHECK(store.bytes() == 0);
}

TEST_CASE("dropping or replacing a spilled block deletes its file",
          "[block_store][spill]") {
  block_store store{budget(1)};
  for (auto id : {"c/1/1000/0", "c/1/1000/1", "c/1/2000/0", "c/2/1000/0"})
    store.put(id, filler('f'), disk_ser);
  auto dir = store.spill_dir();
  REQUIRE(files_in(dir) == 4);
  CHECK(store.erase({"c/2/1000/0", "missing"}) == 1);
  CHECK(files_in(dir) == 3);
  CHECK(store.erase_prefix("c/1/1000/") == 2);
  CHECK(files_in(dir) == 1);
  // Replacing a spilled block with a memory-only one removes the old file.
  store.put("c/1/2000/0", filler('g'));
  CHECK_FALSE(store.on_disk("c/1/2000/0"));
  CHECK(files_in(dir) == 0);
  auto got = store.get("c/1/2000/0");
  REQUIRE(got);
  CHECK(read_strings(*got) == strings{std::string(1000, 'g')});
  auto st = store.statistics();
  CHECK(st.disk_blocks == 0);
  CHECK(st.disk_bytes == 0);
  CHECK(st.blocks == 1);
}

TEST_CASE("memory-only blocks are never spilled even when the store is over its budget",
          "[block_store][spill]") {
  block_store store{budget(1)};
  store.put("in/0/w/0", filler('r'));
  store.put("s/1000/3/0/0/1", filler('s'), storage_level::memory_only_ser());
  store.put("c/1/1000/0", filler('m'), storage_level::memory_only_ser_2());
  store.put("c/2/1000/0", stored_block{typed_records::make(counted_records(50))},
            storage_level::memory_only());
  for (auto id : {"in/0/w/0", "s/1000/3/0/0/1", "c/1/1000/0", "c/2/1000/0"})
    CHECK_FALSE(store.on_disk(id));
  CHECK(store.bytes() > store.memory_budget());
  CHECK(store.statistics().spills == 0);
  CHECK(store.spill_dir().empty());
  // A disk-level block put now is the only one that may go.
  store.put("c/3/1000/0", filler('d'), storage_level::memory_and_disk());
  CHECK(store.on_disk("c/3/1000/0"));
  for (auto id : {"in/0/w/0", "s/1000/3/0/0/1", "c/1/1000/0", "c/2/1000/0"})
    CHECK_FALSE(store.on_disk(id));
  CHECK(store.statistics().spills == 1);
}

TEST_CASE("a spilled block whose file is damaged or missing is an error and not a crash",
          "[block_store][spill]") {
  block_store store{budget(1)};
  store.put("c/1/1000/0", block_of({"one", "two", "three"}), disk_ser);
  store.put("c/1/1000/1", block_of({"uno", "dos", "tres"}), disk_ser);
  REQUIRE(store.on_disk("c/1/1000/0"));
  REQUIRE(store.on_disk("c/1/1000/1"));
  std::string file;
  std::string other;
  for (auto& e : fs::directory_iterator{store.spill_dir()}) {
    auto name = e.path().filename().string();
    (name.rfind("c_2f1_2f1000_2f0~", 0) == 0 ? file : other) = e.path().string();
  }
  REQUIRE(!file.empty());
  REQUIRE(!other.empty());
  auto size = fs::file_size(file);
  std::string expected;

  SECTION("truncated inside the payload") {
    fs::resize_file(file, size - 5);
    expected = "truncated";
  }
  SECTION("truncated inside the header") {
    fs::resize_file(file, 10);
    expected = "truncated";
  }
  SECTION("emptied") {
    fs::resize_file(file, 0);
    expected = "truncated";
  }
  SECTION("a flipped payload byte") {
    std::fstream f{file, std::ios::in | std::ios::out | std::ios::binary};
    f.seekg(static_cast<std::streamoff>(size - 3));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(size - 3));
    f.put(static_cast<char>(c ^ 0x40));
    expected = "checksum";
  }
  SECTION("grown by trailing bytes") {
    std::ofstream{file, std::ios::app | std::ios::binary} << "tail";
    expected = "header says";
  }
  SECTION("missing") {
    fs::remove(file);
    expected = "missing";
  }
  SECTION("another block's file in its place") {
    fs::copy_file(other, file, fs::copy_options::overwrite_existing);
    expected = "another block";
  }
  SECTION("not a spill file at all") {
    write_file(file, std::string(200, 'q'));
    expected = "not a sluice spill file";
  }

  auto got = store.get("c/1/1000/0");
  REQUIRE_FALSE(got);
  INFO(describe(got.error()));
  CHECK(is(got.error(), errc::corrupt_data));
  CHECK_THAT(describe(got.error()), Catch::Contains("c/1/1000/0")
                                      && Catch::Contains(file)
                                      && Catch::Contains(expected));
  // The damaged block is forgotten: readers go straight to another copy.
  CHECK(is(store.get("c/1/1000/0").error(), errc::not_found));
  CHECK_FALSE(store.contains("c/1/1000/0"));
  CHECK_FALSE(fs::exists(file));
  auto st = store.statistics();
  CHECK(st.blocks == 1);
  CHECK(st.disk_blocks == 1);
  // The other block is untouched.
  auto intact = store.get("c/1/1000/1");
  REQUIRE(intact);
  CHECK(read_strings(*intact) == strings{"uno", "dos", "tres"});
}

TEST_CASE("a block stored deserialized is returned as the same typed object without decoding",
          "[block_store][deserialized]") {
  block_store store;
  auto typed = typed_records::make(counted_records(100));
  auto* original = typed.records<counted>();
  REQUIRE(original != nullptr);
  store.put("c/1/1000/0", stored_block{typed}, storage_level::memory_only());
  auto decodes = counted_decodes.load();
  auto encodes = counted_encodes.load();
  auto got = store.get("c/1/1000/0");
  REQUIRE(got);
  CHECK(got->records == 100);
  CHECK(got->bytes.empty());
  CHECK(got->typed.records<counted>() == original); // the very same vector
  CHECK(got->typed.records<std::string>() == nullptr); // typed, not cast blindly
  CHECK(counted_decodes == decodes);
  CHECK(counted_encodes == encodes);
}

TEST_CASE("a deserialized block is encoded on demand for remote readers and stays typed in the store",
          "[block_store][deserialized]") {
  block_store store;
  auto xs = counted_records(40);
  store.put("c/1/1000/0", stored_block{typed_records::make(xs)},
            storage_level::memory_only_2());
  auto encodes = counted_encodes.load();
  auto encoded = store.get_encoded("c/1/1000/0");
  REQUIRE(encoded);
  CHECK(counted_encodes - encodes == 40);
  CHECK(encoded->records == 40);
  CHECK(read_block<counted>(encoded->bytes) == xs);
  auto again = store.get("c/1/1000/0");
  REQUIRE(again);
  CHECK(again->bytes.empty());
  CHECK(again->typed);
}

TEST_CASE("a deserialized disk-level block spills encoded and reads back as bytes",
          "[block_store][deserialized][spill]") {
  block_store store{budget(1)};
  auto xs = counted_records(25);
  store.put("c/1/1000/0", stored_block{typed_records::make(xs)},
            storage_level::memory_and_disk());
  REQUIRE(store.on_disk("c/1/1000/0"));
  CHECK(store.bytes() == 0);
  auto got = store.get("c/1/1000/0");
  REQUIRE(got);
  CHECK_FALSE(got->typed);
  CHECK(got->records == 25);
  CHECK(read_block<counted>(got->bytes) == xs);
}

TEST_CASE("a deserialized block counts the vector plus a sampled estimate of what its records own",
          "[block_store][deserialized]") {
  strings xs(100, std::string(50, 'e'));
  auto typed = typed_records::make(xs);
  // Every record encodes to 51 bytes (a one-byte length and 50 characters).
  CHECK(typed.estimated_bytes() == 100 * sizeof(std::string) + 100 * 51);
  CHECK(typed.size() == 100);
  block_store store;
  store.put("c/1/1000/0", stored_block{typed}, storage_level::memory_only());
  CHECK(store.bytes() == typed.estimated_bytes());
  CHECK(typed_records::make(strings{}).estimated_bytes() == 0);
}

TEST_CASE("the spill directory is made under the local dir on the first spill and removed with the store",
          "[block_store][spill]") {
  temp_dir base{"sluice-spill"};
  auto local = base / "nested/dir";
  std::string dir;
  {
    block_store store{budget(1, local)};
    store.put("small", filler('s'));
    CHECK(store.spill_dir().empty());
    CHECK_FALSE(fs::exists(local));
    store.put("c/1/1000/0", filler('d'), disk_ser);
    dir = store.spill_dir();
    CHECK_THAT(dir, Catch::StartsWith(local + "/sluice-test-"));
    CHECK(fs::is_directory(dir));
    CHECK(files_in(dir) == 1);
  }
  CHECK_FALSE(fs::exists(dir));
  CHECK(fs::exists(local)); // the configured directory itself stays
}

TEST_CASE("a spill directory that cannot be made leaves disk-level blocks in memory",
          "[block_store][spill]") {
  temp_dir base{"sluice-spill"};
  write_file(base / "a-file", "not a directory");
  block_store store{budget(1, base / "a-file/sub")};
  store.put("c/1/1000/0", filler('a'), disk_ser);
  store.put("c/1/1000/1", filler('b'), disk_ser);
  CHECK_FALSE(store.on_disk("c/1/1000/0"));
  CHECK_FALSE(store.on_disk("c/1/1000/1"));
  CHECK(store.statistics().spills == 0);
  auto got = store.get("c/1/1000/1");
  REQUIRE(got);
  CHECK(read_strings(*got) == strings{std::string(1000, 'b')});
}

TEST_CASE("concurrent puts reads and drops of disk-level blocks keep the store consistent",
          "[block_store][spill]") {
  auto size = filler('a', 300).bytes.size();
  block_store store{budget(4 * size)};
  constexpr int threads = 4;
  constexpr int rounds = 150;
  std::vector<std::thread> workers;
  std::vector<std::string> failures(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      // Each thread owns its ids, so every read must see what it put.
      for (int i = 0; i < rounds; ++i) {
        auto id = "t" + std::to_string(t) + "/" + std::to_string(i % 10);
        auto c = static_cast<char>('a' + (i + t) % 26);
        auto level = i % 3 == 0 ? storage_level::memory_only_ser() : disk_ser;
        store.put(id, filler(c, 300), level);
        auto got = store.get(id);
        if (!got || read_strings(*got) != strings{std::string(300, c)})
          failures[t] = "read of " + id + " in round " + std::to_string(i)
                        + (got ? " gave other records" : ": " + describe(got.error()));
        if (i % 7 == 0)
          store.erase({id});
      }
    });
  }
  for (auto& w : workers)
    w.join();
  for (auto& f : failures)
    CHECK(f.empty());
  auto st = store.statistics();
  CHECK(st.spills > 0);
  CHECK(files_in(store.spill_dir()) == st.disk_blocks);
  CHECK(st.memory_bytes + (st.disk_bytes - st.disk_blocks * disk_store::header_size)
        == st.blocks * size);
  store.erase_prefix("t");
  st = store.statistics();
  CHECK(st.blocks == 0);
  CHECK(st.memory_bytes == 0);
  CHECK(st.disk_blocks == 0);
  CHECK(st.disk_bytes == 0);
  CHECK(files_in(store.spill_dir()) == 0);
}

TEST_CASE("spill file names keep distinct block ids apart", "[block_store][spill]") {
  temp_dir base{"sluice-spill"};
  auto disk = disk_store::create(base.path(), "names");
  REQUIRE(disk);
  auto& d = **disk;
  CHECK(d.path_for("c/1/2", 1) != d.path_for("c_2f1_2f2", 1));
  CHECK(d.path_for("c/1/2", 1) != d.path_for("c/1/2", 2));
  CHECK(d.path_for("in/0/worker-host-1/3", 5).find('/', d.dir().size() + 1)
        == std::string::npos);
}

TEST_CASE("a task reads a typed cached input without decoding and encodes it only for byte readers",
          "[task_context][deserialized]") {
  task_context ctx{1000, 0, 0, partition_counts{}, "n", nullptr};
  auto xs = counted_records(30);
  ctx.add_block(3, 0, stored_block{typed_records::make(xs)}, cached_side);
  ctx.add_block(3, 0, stored_block{make_block(counted_records(2)), 2}, cached_side);
  auto decodes = counted_decodes.load();
  std::vector<counted> out;
  ctx.read_into(3, 0, cached_side, out);
  CHECK(counted_decodes - decodes == 2); // only the encoded block
  REQUIRE(out.size() == 32);
  CHECK(std::vector<counted>(out.begin(), out.begin() + 30) == xs);
  decodes = counted_decodes.load();
  size_t seen = 0;
  ctx.for_each_record<counted>(3, 0, cached_side, [&](counted&&) { ++seen; });
  CHECK(seen == 32);
  CHECK(counted_decodes - decodes == 2);
  // A reader that only knows bytes gets every input encoded.
  auto& blocks = ctx.blocks(3, 0, cached_side);
  REQUIRE(blocks.size() == 2);
  size_t records = 0;
  for (auto& b : blocks)
    records += read_block<counted>(b).size();
  CHECK(records == 32);
  // Asking for the wrong type is a clear error, not a bad cast.
  task_context other{1000, 0, 0, partition_counts{}, "n", nullptr};
  other.add_block(3, 0, stored_block{typed_records::make(xs)}, cached_side);
  std::vector<std::string> wrong;
  CHECK_THROWS_WITH(other.read_into(3, 0, cached_side, wrong),
                    Catch::Contains("cached partition of node 3"));
}
