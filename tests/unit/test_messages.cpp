#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/deep_to_string.hpp>
#include <caf/scoped_actor.hpp>
#include <capnp/message.h>

#include "messages/envelope.hpp"
#include "messages/schemas.hpp"
#include "runtime/block.hpp"
#include "runtime/config.hpp"
#include "runtime/exec/task_spec.hpp"

using namespace sluice;

namespace {

bool is_malformed(const caf::error& err) {
  return err && err.category() == error_category()
         && err.code() == static_cast<uint8_t>(errc::malformed_message);
}

block_ref ref(std::string id, uint64_t records, uint64_t bytes,
              std::vector<std::string> locations) {
  block_ref r;
  r.id = std::move(id);
  r.records = records;
  r.bytes = bytes;
  r.locations = std::move(locations);
  return r;
}

bool same_ref(const block_ref& x, const block_ref& y) {
  return x.id == y.id && x.records == y.records && x.bytes == y.bytes
         && x.locations == y.locations;
}

/// A task with every kind of read, counts and peers.
task_spec sample_task() {
  task_spec t;
  t.batch_time = 1700000000123;
  t.job = 42;
  t.stage = 3;
  t.partition = 7;
  t.attempt = 2;
  t.final_node = 9;
  t.action = task_action::shuffle_write;
  t.target = 10;
  t.counts.set(0, 5);
  t.counts.set(9, 5);
  t.counts.set(10, 4);
  leaf_read b;
  b.node = 0;
  b.partition = 7;
  b.source = leaf_read::kind::block;
  b.block = ref("in/1700000000123/0/7", 100, 4096, {"w1", "w2"});
  leaf_read f;
  f.node = 1;
  f.partition = 0;
  f.source = leaf_read::kind::file;
  f.file = "/data/in/file-ä 1.txt";
  leaf_read s;
  s.node = 4;
  s.partition = 2;
  s.source = leaf_read::kind::shuffle;
  s.shuffle = {ref("sh/1/4/0/2", 3, 80, {"w1"}), ref("sh/1/4/1/2", 0, 16, {}),
               ref("sh/1/4/2/2", 9, 200, {"w2", "w3"})};
  leaf_read empty_shuffle;
  empty_shuffle.node = 5;
  empty_shuffle.partition = 0;
  empty_shuffle.source = leaf_read::kind::shuffle;
  t.reads = {b, f, s, empty_shuffle};
  t.peers = {{"w1", 0}, {"w2", 1}, {"w3", 2}};
  return t;
}

msg<wire::LaunchTask> launch_msg(const task_spec& t, buffer payload = {},
                                 std::vector<caf::actor> caps = {}) {
  capnp::MallocMessageBuilder builder;
  encode(t, builder.initRoot<wire::LaunchTask>());
  return make_msg<wire::LaunchTask>(builder, std::move(payload), std::move(caps));
}

void check_same_task(const task_spec& x, const task_spec& y) {
  CHECK(x.batch_time == y.batch_time);
  CHECK(x.job == y.job);
  CHECK(x.stage == y.stage);
  CHECK(x.partition == y.partition);
  CHECK(x.attempt == y.attempt);
  CHECK(x.final_node == y.final_node);
  CHECK(x.action == y.action);
  CHECK(x.target == y.target);
  CHECK(x.counts.all() == y.counts.all());
  REQUIRE(x.reads.size() == y.reads.size());
  for (size_t i = 0; i < x.reads.size(); ++i) {
    INFO("read " << i);
    auto& a = x.reads[i];
    auto& b = y.reads[i];
    CHECK(a.node == b.node);
    CHECK(a.partition == b.partition);
    CHECK(a.source == b.source);
    switch (a.source) {
      case leaf_read::kind::block:
        CHECK(same_ref(a.block, b.block));
        break;
      case leaf_read::kind::file:
        CHECK(a.file == b.file);
        break;
      case leaf_read::kind::shuffle:
        REQUIRE(a.shuffle.size() == b.shuffle.size());
        for (size_t j = 0; j < a.shuffle.size(); ++j)
          CHECK(same_ref(a.shuffle[j], b.shuffle[j]));
        break;
    }
  }
  CHECK(x.peers == y.peers);
  CHECK(x.replica_node == y.replica_node);
  CHECK(x.level == y.level);
  CHECK(std::string{x.level.name} == y.level.name);
}

/// Decodes a LaunchTask header completely (every field and list).
caf::error read_task(const msg<wire::LaunchTask>& m, task_spec& out) {
  return read_msg(m, [&](wire::LaunchTask::Reader r) { out = decode(r); });
}

buffer words_of(const std::vector<uint64_t>& ws) {
  return buffer::copy_of(ws.data(), ws.size() * sizeof(uint64_t));
}

/// A segment table for one segment of `n` words.
uint64_t one_segment(uint32_t n) {
  return uint64_t{n} << 32;
}

uint64_t far_pointer(uint32_t segment, uint32_t offset, bool double_far = false) {
  return 2u | (double_far ? 4u : 0u) | (uint64_t{offset} << 3)
         | (uint64_t{segment} << 32);
}

template <class Schema>
msg<Schema> header_only(buffer header) {
  msg<Schema> m;
  m.header = std::move(header);
  return m;
}

/// CAF's varbyte length prefix (as binary_serializer writes sequence sizes).
void put_varbyte(std::vector<char>& out, uint32_t x) {
  while (x > 0x7f) {
    out.push_back(static_cast<char>((x & 0x7f) | 0x80));
    x >>= 7;
  }
  out.push_back(static_cast<char>(x));
}

} // namespace

TEST_CASE("a PutBlock message round trips with its payload", "[messages]") {
  capnp::MallocMessageBuilder builder;
  auto put = builder.initRoot<wire::PutBlock>();
  put.setId("in/1000/3/0");
  put.setRecords(3);
  auto payload = make_block(std::vector<std::string>{"x", "y", "z"});
  auto m = make_msg<wire::PutBlock>(builder, payload);
  CHECK(m.header.size() % 8 == 0);
  CHECK(m.payload.data() == payload.data()); // shared, never copied
  CHECK(m.caps.empty());
  std::string id;
  uint64_t records = 0;
  auto err = read_msg(m, [&](wire::PutBlock::Reader r) {
    id = r.getId();
    records = r.getRecords();
  });
  INFO(describe(err));
  CHECK(!err);
  CHECK(id == "in/1000/3/0");
  CHECK(records == 3);
  CHECK(read_block<std::string>(m.payload) == std::vector<std::string>{"x", "y", "z"});
}

TEST_CASE("a LaunchTask with block file and shuffle reads round trips",
          "[messages][task_spec]") {
  auto t = sample_task();
  auto m = launch_msg(t);
  task_spec out;
  auto err = read_task(m, out);
  INFO(describe(err));
  REQUIRE(!err);
  check_same_task(out, t);
}

TEST_CASE("a LaunchTask of an output stage round trips", "[messages][task_spec]") {
  task_spec t;
  t.batch_time = -5; // negative batch times are representable
  t.job = UINT64_MAX;
  t.action = task_action::output;
  t.target = 77;
  t.counts.set(77, 1);
  auto m = launch_msg(t);
  task_spec out;
  out.action = task_action::shuffle_write;
  REQUIRE(!read_task(m, out));
  check_same_task(out, t);
  CHECK(out.reads.empty());
  CHECK(out.peers.empty());
}

TEST_CASE("a cache LaunchTask carries every storage level and its replica node",
          "[messages][task_spec]") {
  for (auto level : {storage_level::memory_only(), storage_level::memory_only_2(),
                     storage_level::memory_only_ser(), storage_level::memory_only_ser_2(),
                     storage_level::memory_and_disk(), storage_level::memory_and_disk_2(),
                     storage_level::memory_and_disk_ser(),
                     storage_level::memory_and_disk_ser_2()}) {
    INFO(level.name);
    task_spec t;
    t.action = task_action::cache;
    t.target = 4;
    t.level = level;
    t.replica_node = level.replication == 2 ? "w2" : "";
    task_spec out;
    REQUIRE(!read_task(launch_msg(t), out));
    check_same_task(out, t);
  }
}

TEST_CASE("a LaunchTask from a writer without storage levels reads as MEMORY_ONLY_SER",
          "[messages][task_spec]") {
  capnp::MallocMessageBuilder builder;
  builder.initRoot<wire::LaunchTask>().getAction().setCache(4);
  auto m = make_msg<wire::LaunchTask>(builder);
  task_spec out;
  REQUIRE(!read_task(m, out));
  CHECK(out.action == task_action::cache);
  CHECK(out.level == storage_level::memory_only_ser());
  CHECK(std::string{out.level.name} == "MEMORY_ONLY_SER");
}

TEST_CASE("a storage level with a replication other than 1 or 2 is a malformed message",
          "[messages][task_spec]") {
  for (uint8_t replication : {0, 3, 255}) {
    INFO("replication " << int{replication});
    capnp::MallocMessageBuilder builder;
    auto r = builder.initRoot<wire::LaunchTask>();
    r.getAction().setCache(4);
    r.initStorageLevel().setReplication(replication);
    auto m = make_msg<wire::LaunchTask>(builder);
    task_spec out;
    auto err = read_task(m, out);
    CHECK(is_malformed(err));
    CHECK_THAT(describe(err), Catch::Contains("replication " + std::to_string(replication)));
  }
}

TEST_CASE("a task describes itself by job stage partition batch and attempt",
          "[messages][task_spec]") {
  auto t = sample_task();
  CHECK(t.describe() == "task 42.3.7 (batch 1700000000123 ms, attempt 2)");
}

TEST_CASE("read_msg passes on the error its function returns", "[messages]") {
  auto m = launch_msg(sample_task());
  auto err = read_msg(m, [](wire::LaunchTask::Reader) {
    return make_error(errc::not_found, "no such block");
  });
  REQUIRE(err);
  CHECK(err.code() == static_cast<uint8_t>(errc::not_found));
  CHECK(describe(err) == "not_found: no such block");
  CHECK(!read_msg(m, [](wire::LaunchTask::Reader) { return caf::error{}; }));
}

TEST_CASE("an exception inside the read function becomes a malformed message "
          "error naming the schema",
          "[messages]") {
  auto m = launch_msg(sample_task());
  auto err = read_msg(m, [](wire::LaunchTask::Reader) -> void {
    throw decode_error("bad record inside");
  });
  CHECK(is_malformed(err));
  CHECK_THAT(describe(err), Catch::Contains("sluice::LaunchTask")
                              && Catch::Contains("bad record inside"));
}

TEST_CASE("an empty or misaligned header is a malformed message", "[messages]") {
  msg<wire::LaunchTask> empty;
  task_spec ignored;
  auto err = read_task(empty, ignored);
  CHECK(is_malformed(err));
  CHECK_THAT(describe(err), Catch::Contains("sluice::LaunchTask"));
  auto valid = launch_msg(sample_task());
  for (size_t cut : {size_t{1}, size_t{4}, size_t{7}}) {
    auto m = header_only<wire::LaunchTask>(
      buffer::copy_of(valid.header.data(), valid.header.size() - cut));
    task_spec out;
    err = read_task(m, out);
    CHECK(is_malformed(err));
    CHECK_THAT(describe(err), Catch::Contains("sluice::LaunchTask")
                                && Catch::Contains("8-byte words"));
  }
}

TEST_CASE("a truncated LaunchTask is a malformed message at every length",
          "[messages]") {
  auto valid = launch_msg(sample_task());
  for (size_t len = 0; len < valid.header.size(); ++len) {
    INFO("truncated to " << len << " of " << valid.header.size());
    auto m = header_only<wire::LaunchTask>(buffer::copy_of(valid.header.data(), len));
    task_spec out;
    auto err = read_task(m, out);
    CHECK(is_malformed(err));
    CHECK_THAT(describe(err), Catch::Contains("sluice::LaunchTask"));
  }
}

TEST_CASE("garbage headers are malformed messages naming their schema",
          "[messages]") {
  std::vector<uint64_t> ab(8, 0xabababababababab);
  auto m = header_only<wire::LaunchTask>(words_of(ab));
  task_spec out;
  auto err = read_task(m, out);
  CHECK(is_malformed(err));
  CHECK_THAT(describe(err), Catch::Contains("sluice::LaunchTask"));
  auto pb = header_only<wire::PutBlock>(words_of(ab));
  err = read_msg(pb, [](wire::PutBlock::Reader r) { (void) r.getId(); });
  CHECK(is_malformed(err));
  CHECK_THAT(describe(err), Catch::Contains("sluice::PutBlock"));
  // Random words: whatever they decode to, read_msg must return (an error
  // that names the schema if it fails) and never crash.
  std::mt19937_64 rng{12345};
  size_t refused = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint64_t> ws(1 + rng() % 32);
    for (auto& w : ws)
      w = rng();
    // Half of them get a plausible one-segment table.
    if (i % 2 == 0)
      ws[0] = one_segment(static_cast<uint32_t>(ws.size() - 1));
    auto junk = header_only<wire::LaunchTask>(words_of(ws));
    task_spec t;
    auto e = read_task(junk, t);
    if (e) {
      ++refused;
      CHECK(is_malformed(e));
      CHECK_THAT(describe(e), Catch::StartsWith("malformed_message: sluice::LaunchTask: "));
    }
  }
  CHECK(refused > 1000);
}

TEST_CASE("hostile far pointers are malformed messages", "[messages]") {
  struct hostile {
    const char* what;
    std::vector<uint64_t> words;
  };
  std::vector<hostile> cases{
    {"far pointer to a segment that does not exist",
     {one_segment(1), far_pointer(5, 0)}},
    {"far pointer beyond its segment", {one_segment(1), far_pointer(0, 1000000)}},
    {"far pointer to the last word with a double-far pad",
     {one_segment(2), far_pointer(0, 1, true), 0}},
    {"far pointer landing on itself", {one_segment(1), far_pointer(0, 0)}},
    {"double-far pad whose first word is no far pointer",
     {one_segment(3), far_pointer(0, 1, true), 0, 0}},
    {"double-far pad pointing to a missing segment",
     {one_segment(3), far_pointer(0, 1, true), far_pointer(9, 0), 0}},
    {"far pointers chasing each other",
     {one_segment(2), far_pointer(0, 1), far_pointer(0, 0)}},
    {"struct pointer with a huge data section",
     {one_segment(1), uint64_t{0xffff} << 32}},
    {"struct pointer far outside the segment",
     {one_segment(1), (uint64_t{1} << 32) | (uint64_t{0x1fffffff} << 2)}},
    {"struct pointer with a negative offset",
     {one_segment(1), (uint64_t{1} << 32) | uint64_t{0xfffffff0}}},
  };
  for (auto& c : cases) {
    INFO(c.what);
    auto m = header_only<wire::LaunchTask>(words_of(c.words));
    task_spec out;
    auto err = read_task(m, out);
    CHECK(is_malformed(err));
    CHECK_THAT(describe(err), Catch::Contains("sluice::LaunchTask"));
  }
}

TEST_CASE("a LaunchTask with an amplified list of void is refused",
          "[messages]") {
  // Take a valid task and point its reads list at 2^29-1 void elements that
  // occupy no bytes: decoding must stop at the traversal limit, not loop.
  auto valid = launch_msg(sample_task());
  std::vector<uint64_t> ws(valid.header.size() / 8);
  std::memcpy(ws.data(), valid.header.data(), valid.header.size());
  REQUIRE((ws[0] & 0xffffffff) == 0); // one segment
  auto root = ws[1];
  REQUIRE((root & 3) == 0); // a struct pointer
  auto offset = static_cast<int32_t>(static_cast<uint32_t>(root) & ~3u) >> 2;
  auto data_words = (root >> 32) & 0xffff;
  auto pointers = (root >> 48) & 0xffff;
  REQUIRE(pointers >= 2);
  auto reads_ptr = 2 + offset + data_words + 1; // pointer @1: reads
  REQUIRE(reads_ptr < ws.size());
  REQUIRE((ws[reads_ptr] & 3) == 1); // it is a list pointer
  ws[reads_ptr] = 1 | (uint64_t{0x1fffffff} << 35); // void elements, offset 0
  auto m = header_only<wire::LaunchTask>(words_of(ws));
  task_spec out;
  auto err = read_task(m, out);
  CHECK(is_malformed(err));
  CHECK_THAT(describe(err), Catch::Contains("sluice::LaunchTask"));
}

TEST_CASE("a msg survives CAF binary serialization with its bytes and "
          "capabilities",
          "[messages][caf]") {
  config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor peer_a{sys};
  caf::scoped_actor peer_b{sys};
  auto a = caf::actor_cast<caf::actor>(peer_a);
  auto b = caf::actor_cast<caf::actor>(peer_b);
  auto t = sample_task();
  auto payload = make_block(std::vector<std::string>{"payload", "records", ""});
  // Handles of this node (a remote one would need the middleman's proxies).
  auto m = launch_msg(t, payload, {a, b, a});
  std::vector<char> bytes;
  {
    caf::binary_serializer sink{sys, bytes};
    auto err = sink(m);
    INFO(describe(err));
    REQUIRE(!err);
  }
  CHECK(bytes.size() > m.header.size() + m.payload.size());
  msg<wire::LaunchTask> copy;
  {
    caf::binary_deserializer source{sys, bytes};
    auto err = source(copy);
    INFO(describe(err));
    REQUIRE(!err);
    CHECK(source.remaining() == 0);
  }
  CHECK(copy.header.view() == m.header.view());
  CHECK(copy.payload.view() == m.payload.view());
  CHECK(copy.header.data() != m.header.data()); // a real copy
  CHECK(reinterpret_cast<uintptr_t>(copy.header.data()) % 8 == 0);
  REQUIRE(copy.caps.size() == 3);
  CHECK(copy.caps[0] == a);
  CHECK(copy.caps[1] == b);
  CHECK(copy.caps[2] == a);
  CHECK(copy.caps[0] != copy.caps[1]);
  task_spec out;
  auto err = read_task(copy, out);
  INFO(describe(err));
  REQUIRE(!err);
  check_same_task(out, t);
  CHECK(read_block<std::string>(copy.payload)
        == std::vector<std::string>{"payload", "records", ""});
}

TEST_CASE("an empty payload survives CAF binary serialization", "[messages][caf]") {
  config cfg;
  caf::actor_system sys{cfg};
  capnp::MallocMessageBuilder builder;
  builder.initRoot<wire::GetBlock>().setId("b/1");
  auto m = make_msg<wire::GetBlock>(builder);
  std::vector<char> bytes;
  caf::binary_serializer sink{sys, bytes};
  REQUIRE(!sink(m));
  msg<wire::GetBlock> copy;
  copy.payload = make_block(std::vector<int>{1}); // must be overwritten
  caf::binary_deserializer source{sys, bytes};
  REQUIRE(!source(copy));
  CHECK(copy.payload.empty());
  CHECK(copy.caps.empty());
  std::string id;
  CHECK(!read_msg(copy, [&](wire::GetBlock::Reader r) { id = r.getId(); }));
  CHECK(id == "b/1");
}

TEST_CASE("a deserialized buffer larger than the wire limit is refused",
          "[messages][caf]") {
  config cfg;
  caf::actor_system sys{cfg};
  std::vector<char> bytes;
  put_varbyte(bytes, (uint32_t{1} << 31) + 8);
  bytes.resize(bytes.size() + 64, 0); // a few bytes, nowhere near the claim
  SECTION("as a bare buffer") {
    buffer b;
    caf::binary_deserializer source{sys, bytes};
    auto err = source(b);
    CHECK(is_malformed(err));
    CHECK_THAT(describe(err), Catch::Contains("exceeds the wire limit"));
    CHECK(b.empty());
  }
  SECTION("as the header of a msg") {
    msg<wire::LaunchTask> m;
    caf::binary_deserializer source{sys, bytes};
    auto err = source(m);
    CHECK(is_malformed(err));
    CHECK_THAT(describe(err), Catch::Contains("exceeds the wire limit"));
  }
}

TEST_CASE("a deserialized buffer claiming more bytes than remain is refused",
          "[messages][caf]") {
  config cfg;
  caf::actor_system sys{cfg};
  std::vector<char> bytes;
  put_varbyte(bytes, 4096);
  bytes.resize(bytes.size() + 100, 'x');
  buffer b;
  caf::binary_deserializer source{sys, bytes};
  CHECK(source(b));
  CHECK(b.empty());
}

TEST_CASE("a msg renders its schema name in CAF's string conversion",
          "[messages][caf]") {
  auto m = launch_msg(sample_task());
  auto str = caf::deep_to_string(m);
  CHECK_THAT(str, Catch::Contains("sluice::LaunchTask"));
}
