// DStream output operations (foreach_partition, print, save_as_text_files),
// batch by batch, on a real local-mode cluster (driver + 2 in-process
// workers, the real actors and Cap'n Proto messages) driven by a manual
// clock: h.next_batch() runs exactly one batch, so each batch's output is
// compared with the exact expected records.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "runtime/sinks/text_files.hpp"
#include "tests/support/local_harness.hpp"
#include "tests/unit/operator_tests.hpp"

using namespace sluice;
using namespace sluice::test;

namespace fs = std::filesystem;

namespace {

/// Redirects the process's stdout (fd 1) into a file until finish().
class stdout_capture {
public:
  explicit stdout_capture(std::string path) : path_(std::move(path)) {
    std::fflush(stdout);
    saved_ = ::dup(1);
    auto fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::close(fd);
  }

  ~stdout_capture() {
    restore();
  }

  std::string finish() {
    restore();
    return read_file(path_);
  }

private:
  void restore() {
    if (saved_ < 0)
      return;
    std::fflush(stdout);
    ::dup2(saved_, 1);
    ::close(saved_);
    saved_ = -1;
  }

  std::string path_;
  int saved_ = -1;
};

std::string print_header(time_ms t) {
  return "-------------------------------------------\nTime: " + std::to_string(t)
         + " ms\n-------------------------------------------\n";
}

/// Names of the entries of a directory, sorted.
std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> result;
  for (auto& e : fs::directory_iterator(dir))
    result.push_back(e.path().filename().string());
  std::sort(result.begin(), result.end());
  return result;
}

/// The lines of a file, sorted.
std::vector<std::string> sorted_lines(const std::string& path) {
  std::vector<std::string> result;
  std::istringstream in{read_file(path)};
  std::string line;
  while (std::getline(in, line))
    result.push_back(line);
  std::sort(result.begin(), result.end());
  return result;
}

} // namespace

// -- output operations -----------------------------------------------------------

TEST_CASE("foreach_partition runs on workers with the id of each output partition",
          "[operators]") {
  struct call {
    output_partition id;
    std::vector<int64_t> records;
  };
  struct calls_t {
    std::mutex mtx;
    std::vector<call> calls;
  };
  local_harness h{2};
  auto xs = h.ssc().queue_stream<int64_t>({{1, 2, 3, 4, 5}, {}, {6}});
  auto spread = xs.repartition(3);
  auto unnamed_calls = std::make_shared<calls_t>();
  auto named_calls = std::make_shared<calls_t>();
  auto record = [](std::shared_ptr<calls_t> sink) {
    return [sink](const output_partition& id, std::vector<int64_t>& records) {
      std::lock_guard<std::mutex> guard{sink->mtx};
      sink->calls.push_back(call{id, records});
    };
  };
  auto unnamed = spread.foreach_partition(record(unnamed_calls));
  auto named = xs.foreach_partition(record(named_calls));
  named.name("my-output");
  auto unnamed_id = unnamed.node()->id();
  CHECK(unnamed_id == "foreach_partition-" + std::to_string(unnamed.node()->index()));
  CHECK(named.node()->id() == "my-output");
  h.start();
  auto take = [](std::shared_ptr<calls_t> sink) {
    std::lock_guard<std::mutex> guard{sink->mtx};
    auto result = std::move(sink->calls);
    sink->calls.clear();
    std::sort(result.begin(), result.end(), [](const call& a, const call& b) {
      return a.id.partition < b.id.partition;
    });
    return result;
  };
  for (time_ms t = 1000; t <= 3000; t += 1000) {
    h.next_batch();
    INFO("batch " << t);
    auto u = take(unnamed_calls);
    REQUIRE(u.size() == 3);
    std::vector<int64_t> all;
    for (uint32_t p = 0; p < 3; ++p) {
      CHECK(u[p].id.batch_time == t);
      CHECK(u[p].id.output_id == unnamed_id);
      CHECK(u[p].id.partition == p);
      CHECK(u[p].id.partitions == 3);
      CHECK(u[p].id.attempt >= 1);
      all.insert(all.end(), u[p].records.begin(), u[p].records.end());
    }
    auto expected = t == 1000 ? ints{1, 2, 3, 4, 5} : t == 2000 ? ints{} : ints{6};
    CHECK(sorted(all) == expected);
    auto n = take(named_calls);
    // One queued block, one partition (also for the queued empty batch).
    REQUIRE(n.size() == 1);
    CHECK(n[0].id.batch_time == t);
    CHECK(n[0].id.output_id == "my-output");
    CHECK(n[0].id.partition == 0);
    CHECK(n[0].id.partitions == 1);
    CHECK(sorted(n[0].records) == expected);
  }
}

TEST_CASE("print writes the batch header and the first records to stdout",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto xs = ssc.queue_stream<std::string>(
    {{"a", "b", "c", "d", "e"}, {"x", "y"}, {}, {"p", "q", "r"}});
  xs.print(3);
  temp_dir dir{"sluice-print"};
  h.start();
  auto run_captured = [&](const std::string& name) {
    stdout_capture capture{dir / name};
    h.next_batch();
    return capture.finish();
  };
  // One partition in queue order: the first three, then "..." for the rest.
  CHECK(run_captured("1") == print_header(1000) + "a\nb\nc\n...\n\n");
  CHECK(run_captured("2") == print_header(2000) + "x\ny\n\n");
  CHECK(run_captured("3") == print_header(3000) + "\n");
  // Exactly n records: no "...".
  CHECK(run_captured("4") == print_header(4000) + "p\nq\nr\n\n");
}

TEST_CASE("print formats pairs and stops after n records across partitions",
          "[operators]") {
  local_harness h{2};
  auto& ssc = h.ssc();
  auto a = ssc.queue_stream<std::string>({{"a1", "a2"}});
  auto b = ssc.queue_stream<std::string>({{"b1", "b2"}});
  a.union_with(b).print(3);
  auto words = ssc.queue_stream<std::string>({{}, {"w", "w", "w"}});
  words.map(one).reduce_by_key(add).print();
  temp_dir dir{"sluice-print"};
  h.start();
  std::string out;
  {
    stdout_capture capture{dir / "1"};
    h.next_batch();
    out = capture.finish();
  }
  // Two outputs printed this batch; the union's block has 3 of its 4 records.
  auto header = print_header(1000);
  auto first = out.find(header);
  REQUIRE(first != std::string::npos);
  auto second = out.find(header, first + header.size());
  REQUIRE(second != std::string::npos);
  CHECK(out.find(header, second + header.size()) == std::string::npos);
  std::vector<std::string> blocks{out.substr(first, second - first), out.substr(second)};
  std::sort(blocks.begin(), blocks.end(), [](auto& x, auto& y) { return x.size() < y.size(); });
  CHECK(blocks[0] == header + "\n"); // the empty word count
  auto& shown = blocks[1];
  REQUIRE(shown.size() > header.size());
  std::vector<std::string> lines;
  std::istringstream in{shown.substr(header.size())};
  std::string line;
  while (std::getline(in, line))
    lines.push_back(line);
  REQUIRE(lines.size() == 5);
  CHECK(lines[3] == "...");
  CHECK(lines[4].empty());
  std::set<std::string> records{lines[0], lines[1], lines[2]};
  CHECK(records.size() == 3);
  for (auto& r : records)
    CHECK((r == "a1" || r == "a2" || r == "b1" || r == "b2"));
  {
    stdout_capture capture{dir / "2"};
    h.next_batch();
    out = capture.finish();
  }
  CHECK(out.find(print_header(2000) + "w\t3\n\n") != std::string::npos);
}

TEST_CASE("save_as_text_files writes one part file per partition and batch",
          "[operators]") {
  temp_dir dir{"sluice-save"};
  local_harness h{2};
  auto& ssc = h.ssc();
  auto xs = ssc.queue_stream<std::string>({{"one", "two", "three", "four", "five"}, {}, {"x"}});
  xs.repartition(3).save_as_text_files(dir / "out");
  xs.save_as_text_files(dir / "single", "txt");
  xs.map(one).reduce_by_key(add, 2).save_as_text_files_in(dir / "counts");
  h.start();
  h.next_batch();
  auto parts = std::vector<std::string>{"part-00000", "part-00001", "part-00002"};
  REQUIRE(fs::is_directory(dir / "out-1000"));
  CHECK(list_dir(dir / "out-1000") == parts);
  std::vector<std::string> lines;
  for (auto& p : parts) {
    auto ls = sorted_lines(dir / ("out-1000/" + p));
    CHECK(!ls.empty());
    lines.insert(lines.end(), ls.begin(), ls.end());
  }
  CHECK(sorted(lines) == strings{"five", "four", "one", "three", "two"});
  // Every record is one line: the files end with a newline.
  for (auto& p : parts) {
    auto content = read_file(dir / ("out-1000/" + p));
    CHECK(content.back() == '\n');
  }
  CHECK(list_dir(dir / "single-1000.txt") == strings{"part-00000"});
  CHECK(sorted_lines(dir / "single-1000.txt/part-00000")
        == strings{"five", "four", "one", "three", "two"});
  CHECK(list_dir(dir / "counts/1000") == strings{"part-00000", "part-00001"});
  auto count_lines = sorted_lines(dir / "counts/1000/part-00000");
  auto more = sorted_lines(dir / "counts/1000/part-00001");
  count_lines.insert(count_lines.end(), more.begin(), more.end());
  CHECK(sorted(count_lines)
        == strings{"five\t1", "four\t1", "one\t1", "three\t1", "two\t1"});
  h.next_batch();
  // The empty batch: every partition still has its (empty) file.
  CHECK(list_dir(dir / "out-2000") == parts);
  for (auto& p : parts)
    CHECK(read_file(dir / ("out-2000/" + p)).empty());
  CHECK(list_dir(dir / "single-2000.txt") == strings{"part-00000"});
  CHECK(read_file(dir / "single-2000.txt/part-00000").empty());
  CHECK(list_dir(dir / "counts/2000") == strings{"part-00000", "part-00001"});
  h.next_batch();
  lines.clear();
  for (auto& p : parts) {
    auto ls = sorted_lines(dir / ("out-3000/" + p));
    lines.insert(lines.end(), ls.begin(), ls.end());
  }
  CHECK(lines == strings{"x"});
  // Nothing else was left behind: no temporary files anywhere.
  std::vector<std::string> all;
  for (auto& e : fs::recursive_directory_iterator(dir.path()))
    if (e.is_regular_file())
      all.push_back(fs::relative(e.path(), dir.path()).string());
  std::sort(all.begin(), all.end());
  strings expected_files;
  for (auto t : {"1000", "2000", "3000"}) {
    for (auto& p : parts)
      expected_files.push_back(std::string{"out-"} + t + "/" + p);
    expected_files.push_back(std::string{"single-"} + t + ".txt/part-00000");
    expected_files.push_back(std::string{"counts/"} + t + "/part-00000");
    expected_files.push_back(std::string{"counts/"} + t + "/part-00001");
  }
  std::sort(expected_files.begin(), expected_files.end());
  CHECK(all == expected_files);
}
