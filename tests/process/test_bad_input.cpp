#include <catch2/catch.hpp>

#include <filesystem>
#include <signal.h>

#include "tests/process/cluster.hpp"

using namespace sluice::test;
namespace fs = std::filesystem;

TEST_CASE("a source address that refuses connections is retried and reported while the node stays up",
          "[process][bad-input]") {
  temp_dir dir{"sluice-refused"};
  auto port = refused_port();
  auto target = "127.0.0.1:" + std::to_string(port);
  child_process p{{wordcount_binary(), "--local=2", "--source=socket://" + target,
                   "--output=" + (dir / "out"), "--batch-interval=200ms"},
                  dir.path(), "wordcount"};
  INFO(p.err());
  REQUIRE(wait_until([&] {
    return p.err().find("cannot connect to " + target) != std::string::npos;
  }));
  // Batches keep completing (empty) while the source is unreachable.
  auto batches_now = [&] {
    auto log = p.err();
    size_t n = 0;
    for (auto pos = log.find("] batch "); pos != std::string::npos;
         pos = log.find("] batch ", pos + 1))
      ++n;
    return n;
  };
  auto before = batches_now();
  CHECK(wait_until([&] { return batches_now() >= before + 3; }));
  CHECK(p.running());
  p.signal(SIGTERM);
  CHECK(exited_with(p.wait(), 0));
}

TEST_CASE("an unreadable input file is reported by name and counted once it becomes readable",
          "[process][bad-input]") {
  temp_dir dir{"sluice-unreadable"};
  auto in = dir / "in";
  fs::create_directories(in);
  // A dangling symlink: the name is there, its content cannot be read (we
  // run as root, so permission bits would not stop us).
  fs::create_symlink(dir / "missing-target", in + "/broken.txt");
  child_process p{{wordcount_binary(), "--local=2", "--source=dir://" + in,
                   "--output=" + (dir / "out"), "--batch-interval=200ms"},
                  dir.path(), "wordcount"};
  INFO(p.err());
  REQUIRE(wait_until([&] {
    return p.err().find("cannot read " + in + "/broken.txt") != std::string::npos;
  }));
  CHECK(p.running());
  auto text = make_text(200, 9);
  write_file(dir / "missing-target", text);
  CHECK(wait_until([&] { return read_word_totals(dir / "out") == count_words(text); }));
  p.signal(SIGTERM);
  CHECK(exited_with(p.wait(), 0));
}
