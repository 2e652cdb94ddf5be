#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "runtime/block.hpp"
#include "runtime/block_store.hpp"

using namespace sluice;

namespace {

stored_block block_of(std::vector<std::string> xs) {
  stored_block result;
  result.records = xs.size();
  result.bytes = make_block(xs);
  return result;
}

} // namespace

TEST_CASE("a block store starts empty", "[block_store]") {
  block_store store;
  CHECK(store.size() == 0);
  CHECK(store.bytes() == 0);
  CHECK(store.ids().empty());
  CHECK_FALSE(store.get("nothing"));
  CHECK_FALSE(store.contains("nothing"));
  CHECK(store.erase({"nothing"}) == 0);
  CHECK(store.erase_prefix("") == 0);
}

TEST_CASE("a block store returns what was put and accounts its bytes",
          "[block_store]") {
  block_store store;
  auto a = block_of({"a", "b", "c"});
  auto b = block_of({std::string(500, 'x')});
  store.put("in/1/0", a);
  store.put("in/1/1", b);
  CHECK(store.size() == 2);
  CHECK(store.bytes() == a.bytes.size() + b.bytes.size());
  CHECK(store.contains("in/1/0"));
  auto got = store.get("in/1/0");
  REQUIRE(got);
  CHECK(got->records == 3);
  CHECK(got->bytes.data() == a.bytes.data()); // shared, not copied
  CHECK(read_block<std::string>(got->bytes) == std::vector<std::string>{"a", "b", "c"});
  CHECK(store.ids() == std::vector<std::string>{"in/1/0", "in/1/1"});
}

TEST_CASE("replacing a block keeps one entry and corrects the byte count",
          "[block_store]") {
  block_store store;
  auto small = block_of({"s"});
  auto large = block_of({std::string(4000, 'L'), std::string(4000, 'M')});
  auto other = block_of({"other"});
  store.put("x", small);
  store.put("y", other);
  store.put("x", large);
  CHECK(store.size() == 2);
  CHECK(store.bytes() == large.bytes.size() + other.bytes.size());
  auto got = store.get("x");
  REQUIRE(got);
  CHECK(got->records == 2);
  CHECK(got->bytes.data() == large.bytes.data());
  // Replace with the smaller one again: the count must go down.
  store.put("x", small);
  CHECK(store.bytes() == small.bytes.size() + other.bytes.size());
  CHECK(store.erase({"x", "y"}) == 2);
  CHECK(store.bytes() == 0);
  CHECK(store.size() == 0);
}

TEST_CASE("erase drops only the given ids and counts those present",
          "[block_store]") {
  block_store store;
  auto a = block_of({"a"});
  auto b = block_of({"bb"});
  auto c = block_of({"ccc"});
  store.put("a", a);
  store.put("b", b);
  store.put("c", c);
  CHECK(store.erase({"b", "missing", "b"}) == 1);
  CHECK(store.size() == 2);
  CHECK_FALSE(store.contains("b"));
  CHECK(store.contains("a"));
  CHECK(store.contains("c"));
  CHECK(store.bytes() == a.bytes.size() + c.bytes.size());
  CHECK(store.erase({}) == 0);
}

TEST_CASE("erase_prefix drops exactly the ids that start with the prefix",
          "[block_store]") {
  block_store store;
  std::vector<std::string> ids{"s/100/0",   "s/1000",    "s/1000/0",  "s/1000/1",
                               "s/1000/9/x", "s/10000/0", "s/10000/1", "s/1001/0",
                               "r/1000/0",  "s/0999/0"};
  uint64_t kept_bytes = 0;
  for (auto& id : ids) {
    auto blk = block_of({id});
    if (id.rfind("s/1000/", 0) != 0)
      kept_bytes += blk.bytes.size();
    store.put(id, blk);
  }
  CHECK(store.erase_prefix("s/1000/") == 3);
  CHECK(store.size() == ids.size() - 3);
  CHECK(store.bytes() == kept_bytes);
  CHECK(store.ids()
        == std::vector<std::string>{"r/1000/0", "s/0999/0", "s/100/0", "s/1000",
                                    "s/10000/0", "s/10000/1", "s/1001/0"});
  // Nothing left to match.
  CHECK(store.erase_prefix("s/1000/") == 0);
  // A prefix that is a whole id and a prefix of others.
  CHECK(store.erase_prefix("s/1000") == 3); // s/1000, s/10000/0, s/10000/1
  CHECK(store.ids() == std::vector<std::string>{"r/1000/0", "s/0999/0", "s/100/0", "s/1001/0"});
  // The empty prefix matches everything.
  CHECK(store.erase_prefix("") == 4);
  CHECK(store.size() == 0);
  CHECK(store.bytes() == 0);
}

TEST_CASE("a block read out of the store stays valid after it is erased",
          "[block_store]") {
  block_store store;
  std::vector<std::string> xs{"survives", "the", "erase"};
  store.put("b", block_of(xs));
  auto got = store.get("b");
  REQUIRE(got);
  block_reader reader{got->bytes};
  REQUIRE(store.erase({"b"}) == 1);
  CHECK_FALSE(store.get("b"));
  // Overwrite freed memory as far as we can: more blocks in and out.
  for (int i = 0; i < 100; ++i) {
    store.put("filler", block_of({std::string(100, static_cast<char>('a' + i % 26))}));
    store.erase_prefix("fill");
  }
  CHECK(read_block<std::string>(got->bytes) == xs);
  REQUIRE(reader.size() == 3);
  CHECK(decode_all<std::string>(reader.record(0)) == "survives");
}
