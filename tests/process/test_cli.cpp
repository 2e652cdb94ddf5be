#include <catch2/catch.hpp>

#include <sys/wait.h>

#include "tests/support/helpers.hpp"

using namespace sluice::test;

namespace {

struct outcome {
  int status;
  std::string err;
};

outcome run_wordcount(std::vector<std::string> args) {
  temp_dir logs{"sluice-cli"};
  args.insert(args.begin(), wordcount_binary());
  child_process p{args, logs.path(), "wordcount"};
  auto status = p.wait(std::chrono::seconds{30});
  return {status, p.err()};
}

bool failed(const outcome& o) {
  return o.status != -1 && WIFEXITED(o.status) && WEXITSTATUS(o.status) != 0;
}

} // namespace

TEST_CASE("an unknown option is refused at start with its name", "[process][config]") {
  auto o = run_wordcount({"--source=gen://10", "--output=/tmp/x", "--bogus=1"});
  CHECK(failed(o));
  CHECK_THAT(o.err, Catch::Contains("unknown option --bogus"));
}

TEST_CASE("an unknown sluice key is refused at start with its name", "[process][config]") {
  auto o = run_wordcount({"--source=gen://10", "--output=/tmp/x",
                          "--sluice.no-such-key=3"});
  CHECK(failed(o));
  CHECK_THAT(o.err, Catch::Contains("sluice.no-such-key"));
}

TEST_CASE("a bad value is refused at start naming the option", "[process][config]") {
  auto o = run_wordcount({"--source=gen://10", "--output=/tmp/x", "--local=abc"});
  CHECK(failed(o));
  CHECK_THAT(o.err, Catch::Contains("--local=abc"));
}

TEST_CASE("a bad source URI is refused naming the URI", "[process][config]") {
  auto o = run_wordcount({"--source=ftp://x", "--output=/tmp/x", "--local=1"});
  CHECK(failed(o));
  CHECK_THAT(o.err, Catch::Contains("ftp://x"));
  auto p = run_wordcount({"--source=dir://relative", "--output=/tmp/x"});
  CHECK(failed(p));
  CHECK_THAT(p.err, Catch::Contains("absolute"));
}

TEST_CASE("a worker without a driver address is refused", "[process][config]") {
  auto o = run_wordcount({"--source=gen://10", "--output=/tmp/x", "--role=worker"});
  CHECK(failed(o));
  CHECK_THAT(o.err, Catch::Contains("--driver"));
}

TEST_CASE("an event log that cannot be opened stops the start naming its path",
          "[process][config]") {
  temp_dir out{"sluice-cli-out"};
  auto o = run_wordcount({"--source=gen://10", "--output=" + out.path(), "--local=1",
                          "--duration=5",
                          "--sluice.event-log=/nonexistent-dir/events.jsonl"});
  CHECK(failed(o));
  CHECK_THAT(o.err, Catch::Contains("/nonexistent-dir/events.jsonl"));
}
