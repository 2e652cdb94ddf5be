// Receiver sources against real TCP on 127.0.0.1: every wait is for a
// condition with a deadline, never a fixed sleep.

#include <catch2/catch.hpp>

#include "tests/support/helpers.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/block.hpp"
#include "runtime/block_generator.hpp"
#include "runtime/sources/source.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::chrono::milliseconds deadline = 10s;

using sluice::test::wait_until;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct event {
  bool is_error;
  std::string text;
};

/// Records what a source reports, for tests to wait on.
class recording_reporter : public sluice::source_reporter {
public:
  void started(const std::string& what) override { add(false, what); }

  void error(const std::string& what) override { add(true, what); }

  std::vector<event> events() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return events_;
  }

  template <class Predicate>
  size_t count(Predicate pred) const {
    std::lock_guard<std::mutex> guard{mtx_};
    return static_cast<size_t>(
        std::count_if(events_.begin(), events_.end(), pred));
  }

  /// Waits until an event matching `pred` has been reported.
  template <class Predicate>
  bool wait_for_event(Predicate pred) {
    return wait_for_count(pred, 1, deadline);
  }

  /// Waits until `n` events matching `pred` have been reported.
  template <class Predicate>
  bool wait_for_count(Predicate pred, size_t n,
                      std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> guard{mtx_};
    return cv_.wait_for(guard, timeout, [&] {
      return static_cast<size_t>(
                 std::count_if(events_.begin(), events_.end(), pred)) >= n;
    });
  }

private:
  void add(bool is_error, const std::string& what) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      events_.push_back(event{is_error, what});
    }
    cv_.notify_all();
  }

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<event> events_;
};

auto error_containing(std::string part) {
  return [part = std::move(part)](const event& e) {
    return e.is_error && contains(e.text, part);
  };
}

auto started_with(std::string text) {
  return [text = std::move(text)](const event& e) {
    return !e.is_error && e.text == text;
  };
}

/// Everything a running source touches. Shared with the source thread, so a
/// thread that fails to stop can be detached without dangling references.
struct run_state {
  run_state(sluice::source_ptr src, uint64_t max_rate)
      : source(std::move(src)), gen(max_rate) {}

  sluice::source_ptr source;
  sluice::block_generator gen;
  sluice::stop_signal stop;
  recording_reporter report;
  std::promise<void> done;
};

/// Runs a source on its own thread, as a Receiver does.
class source_runner {
public:
  explicit source_runner(sluice::source_ptr src, uint64_t max_rate = 0)
      : state_(std::make_shared<run_state>(std::move(src), max_rate)) {
    finished_ = state_->done.get_future();
    thread_ = std::thread([st = state_] {
      try {
        st->source->run(st->gen, st->stop, st->report);
        st->done.set_value();
      } catch (...) {
        st->done.set_exception(std::current_exception());
      }
    });
  }

  source_runner(const source_runner&) = delete;
  source_runner& operator=(const source_runner&) = delete;

  ~source_runner() {
    state_->stop.request_stop();
    state_->gen.interrupt();
    if (!thread_.joinable())
      return;
    if (finished_.wait_for(deadline) == std::future_status::ready)
      thread_.join();
    else
      thread_.detach(); // the failing test has already said so
  }

  /// Requests a stop, as the Receiver does, and returns whether run()
  /// returned before the deadline. Rethrows what run() threw.
  bool stop() {
    state_->stop.request_stop();
    state_->gen.interrupt();
    if (!thread_.joinable())
      return true;
    if (finished_.wait_for(deadline) != std::future_status::ready)
      return false;
    thread_.join();
    finished_.get();
    return true;
  }

  sluice::block_generator& gen() { return state_->gen; }

  recording_reporter& report() { return state_->report; }

  /// Cuts and decodes everything buffered so far.
  std::vector<std::string> take() {
    auto cut = state_->gen.cut();
    if (!cut)
      return {};
    return sluice::read_block<std::string>(cut->bytes);
  }

  bool wait_for_records(uint64_t n) {
    return wait_until([&] { return state_->gen.buffered_records() >= n; });
  }

private:
  std::shared_ptr<run_state> state_;
  std::future<void> finished_;
  std::thread thread_;
};

/// Owns a socket.
class fd_guard {
public:
  explicit fd_guard(int fd = -1) noexcept : fd_(fd) {}

  fd_guard(fd_guard&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

  fd_guard& operator=(fd_guard&& other) noexcept {
    reset(std::exchange(other.fd_, -1));
    return *this;
  }

  ~fd_guard() { reset(); }

  int get() const noexcept { return fd_; }

  explicit operator bool() const noexcept { return fd_ >= 0; }

  void reset(int fd = -1) noexcept {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = fd;
  }

private:
  int fd_;
};

/// A TCP server socket on 127.0.0.1 with a port chosen by the OS. Bound but
/// not yet listening, it refuses connections (on Linux, a SYN to a bound
/// socket that does not listen is answered with a reset), and the port stays
/// ours until listen() makes it accept.
class test_listener {
public:
  explicit test_listener(bool listening = true) {
    sock_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(sock_);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(sock_.get(), reinterpret_cast<sockaddr*>(&addr),
                   sizeof(addr)) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(::getsockname(sock_.get(), reinterpret_cast<sockaddr*>(&addr),
                          &len) == 0);
    port_ = ntohs(addr.sin_port);
    if (listening)
      start_listening();
  }

  void start_listening(int backlog = 16) {
    REQUIRE(::listen(sock_.get(), backlog) == 0);
  }

  uint16_t port() const noexcept { return port_; }

  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Waits for and accepts one connection; an invalid guard on timeout.
  fd_guard accept() {
    pollfd pfd{sock_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(deadline.count())) <= 0)
      return fd_guard{};
    return fd_guard{::accept4(sock_.get(), nullptr, nullptr, SOCK_CLOEXEC)};
  }

private:
  fd_guard sock_;
  uint16_t port_ = 0;
};

void send_all(const fd_guard& conn, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    auto n = ::send(conn.get(), data.data() + sent, data.size() - sent,
                    MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    REQUIRE(n > 0);
    sent += static_cast<size_t>(n);
  }
}

/// Makes connection attempts to `port` hang: with a backlog of 0 the
/// listener's accept queue holds one connection, and once it is full Linux
/// drops further SYNs, so later connects stay in SYN_SENT.
std::vector<fd_guard> fill_accept_queue(test_listener& server) {
  server.start_listening(0);
  std::vector<fd_guard> fillers;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(server.port());
  for (int i = 0; i < 3; ++i) {
    fd_guard sock{
        ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    REQUIRE(sock);
    auto rc =
        ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    REQUIRE((rc == 0 || errno == EINPROGRESS));
    fillers.push_back(std::move(sock));
  }
  return fillers;
}

/// Counts the IPv4 sockets waiting in SYN_SENT for 127.0.0.1:port.
size_t count_syn_sent(uint16_t port) {
  std::ifstream in{"/proc/net/tcp"};
  REQUIRE(in);
  char remote[32];
  std::snprintf(remote, sizeof(remote), "0100007F:%04X", port);
  std::string line;
  std::getline(in, line); // column titles
  size_t result = 0;
  while (std::getline(in, line)) {
    std::istringstream fields{line};
    std::string slot, local_address, rem_address, state;
    fields >> slot >> local_address >> rem_address >> state;
    if (rem_address == remote && state == "02")
      ++result;
  }
  return result;
}

/// Waits until the peer of `conn` closes it; false on timeout or data.
bool wait_for_eof(const fd_guard& conn) {
  pollfd pfd{conn.get(), POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(deadline.count())) <= 0)
    return false;
  char c;
  return ::recv(conn.get(), &c, 1, 0) == 0;
}

std::string join(const std::vector<std::string>& xs) {
  std::string result;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (i > 0)
      result += '\n';
    result += xs[i];
  }
  return result;
}

/// The text a line reader should reproduce: "\r\n" read as "\n", and no
/// final line terminator.
std::string normalized(std::string text) {
  std::string result;
  for (size_t i = 0; i < text.size(); ++i)
    if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n'))
      result += text[i];
  if (!result.empty() && result.back() == '\n')
    result.pop_back();
  return result;
}

std::vector<std::string> split_words(const std::string& line) {
  std::vector<std::string> words;
  size_t begin = 0;
  for (;;) {
    auto end = line.find(' ', begin);
    words.push_back(line.substr(begin, end - begin));
    if (end == std::string::npos)
      return words;
    begin = end + 1;
  }
}

bool is_lowercase_word(const std::string& word) {
  return !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return c >= 'a' && c <= 'z';
  });
}

std::vector<std::string> first_records(source_runner& run, size_t n) {
  REQUIRE(run.wait_for_records(n));
  REQUIRE(run.stop());
  auto lines = run.take();
  REQUIRE(lines.size() >= n);
  lines.resize(n);
  return lines;
}

} // namespace

// -- stop_signal --------------------------------------------------------------

TEST_CASE("a stop signal wakes a thread that waits on it", "[sources]") {
  sluice::stop_signal stop;
  CHECK_FALSE(stop.stop_requested());
  CHECK_FALSE(stop.wait_for(1ms));
  std::atomic<bool> waiting{false};
  auto result = std::async(std::launch::async, [&] {
    waiting = true;
    return stop.wait_for(std::chrono::milliseconds{1h});
  });
  REQUIRE(wait_until([&] { return waiting.load(); }));
  stop.request_stop();
  REQUIRE(result.wait_for(deadline) == std::future_status::ready);
  CHECK(result.get());
  CHECK(stop.stop_requested());
  // Once stopped, waiting returns at once.
  CHECK(stop.wait_for(std::chrono::milliseconds{1h}));
}

// -- socket source ------------------------------------------------------------

TEST_CASE("socket source describes itself by host and port",
          "[sources][socket]") {
  CHECK(sluice::make_socket_source("127.0.0.1", 9999)->describe() ==
        "socket 127.0.0.1:9999");
  CHECK(sluice::make_socket_source("::1", 9999)->describe() ==
        "socket [::1]:9999");
}

TEST_CASE("socket source delivers the exact lines a server sends",
          "[sources][socket]") {
  test_listener server;
  source_runner run{sluice::make_socket_source("127.0.0.1", server.port())};
  auto conn = server.accept();
  REQUIRE(conn);
  REQUIRE(run.report().wait_for_event(
      started_with("connected to " + server.endpoint())));
  std::string part1 = "alpha\nbeta\r\n\ngam";
  std::string part2 = "ma\ndelta";
  send_all(conn, part1);
  // Three complete lines arrived, so the source holds "gam" when the rest of
  // that line comes in a second send.
  REQUIRE(run.wait_for_records(3));
  send_all(conn, part2);
  conn.reset(); // "delta" has no '\n': the close must deliver it
  REQUIRE(run.wait_for_records(5));
  REQUIRE(run.report().wait_for_event(
      error_containing("connection to " + server.endpoint() + " closed")));
  REQUIRE(run.stop());
  auto lines = run.take();
  CHECK(lines ==
        std::vector<std::string>{"alpha", "beta", "", "gamma", "delta"});
  CHECK(join(lines) == normalized(part1 + part2));
}

TEST_CASE("socket source reassembles a large text sent in odd sized pieces",
          "[sources][socket]") {
  // Lines of varied length (some empty, some with "\r\n", some longer than
  // a piece) so line ends land anywhere within the source's receive buffer.
  std::vector<std::string> expected;
  std::string text;
  for (size_t i = 0; i < 20000; ++i) {
    std::string line((i * 37) % 301, static_cast<char>('a' + i % 26));
    if (i % 1000 == 999)
      line.assign(5000 + i, 'x');
    text += line;
    text += i % 3 == 0 ? "\r\n" : "\n";
    expected.push_back(std::move(line));
  }
  test_listener server;
  source_runner run{sluice::make_socket_source("127.0.0.1", server.port())};
  auto conn = server.accept();
  REQUIRE(conn);
  constexpr size_t piece = 1009;
  for (size_t pos = 0; pos < text.size(); pos += piece)
    send_all(conn, text.substr(pos, piece));
  conn.reset();
  REQUIRE(run.wait_for_records(expected.size()));
  REQUIRE(run.stop());
  auto lines = run.take();
  REQUIRE(lines.size() == expected.size());
  CHECK(lines == expected);
  CHECK(join(lines) == normalized(text));
}

TEST_CASE("socket source reports a refused connection once and connects when "
          "the server starts listening",
          "[sources][socket]") {
  test_listener server{false};
  source_runner run{sluice::make_socket_source("127.0.0.1", server.port())};
  auto refused = error_containing("cannot connect to " + server.endpoint() +
                                  " (Connection refused)");
  REQUIRE(run.report().wait_for_event(refused));
  auto events = run.report().events();
  REQUIRE_FALSE(events.empty());
  CHECK_THAT(events.front().text, Catch::Contains("retrying in 100ms"));
  // The source retries after 100, 200 and 400 ms; every attempt is refused
  // the same way, which must not be reported again. Waiting for a report
  // that must not come proves nothing if the machine is slow, but can never
  // fail a correct source.
  CHECK_FALSE(run.report().wait_for_count(refused, 2, 800ms));
  server.start_listening();
  auto conn = server.accept(); // only a retry can connect now
  REQUIRE(conn);
  REQUIRE(run.report().wait_for_event(
      started_with("connected to " + server.endpoint())));
  CHECK(run.report().count(refused) == 1);
  send_all(conn, "hello\n");
  REQUIRE(run.wait_for_records(1));
  REQUIRE(run.stop());
  CHECK(run.take() == std::vector<std::string>{"hello"});
}

TEST_CASE("socket source reconnects after the server closes the connection",
          "[sources][socket]") {
  test_listener server;
  source_runner run{sluice::make_socket_source("127.0.0.1", server.port())};
  auto first = server.accept();
  REQUIRE(first);
  send_all(first, "first\ncut short");
  first.reset();
  auto second = server.accept();
  REQUIRE(second);
  send_all(second, "second\n");
  REQUIRE(run.wait_for_records(3));
  REQUIRE(run.report().wait_for_event(error_containing(
      "connection to " + server.endpoint() + " closed by the peer")));
  auto connected = started_with("connected to " + server.endpoint());
  REQUIRE(wait_until([&] { return run.report().count(connected) >= 2; }));
  REQUIRE(run.stop());
  CHECK(run.take() == std::vector<std::string>{"first", "cut short", "second"});
}

TEST_CASE("socket source stops promptly", "[sources][socket]") {
  SECTION("while connected to a silent server") {
    test_listener server;
    source_runner run{sluice::make_socket_source("127.0.0.1", server.port())};
    auto conn = server.accept();
    REQUIRE(conn);
    REQUIRE(run.report().wait_for_event(
        started_with("connected to " + server.endpoint())));
    CHECK(run.stop());
    // The source closed its end: the server sees EOF.
    CHECK(wait_for_eof(conn));
    CHECK(run.take().empty());
  }
  SECTION("while a connection attempt hangs") {
    test_listener server{false};
    auto fillers = fill_accept_queue(server);
    auto before = count_syn_sent(server.port());
    REQUIRE(before >= 1); // the queue is full: SYNs go unanswered
    source_runner run{sluice::make_socket_source("127.0.0.1", server.port())};
    // One more unanswered SYN: the source is inside its connect.
    REQUIRE(wait_until([&] { return count_syn_sent(server.port()) > before; }));
    CHECK(run.stop());
    CHECK(run.report().events().empty());
    // The abandoned attempt's socket was closed.
    CHECK(wait_until([&] { return count_syn_sent(server.port()) == before; }));
  }
  SECTION("while retrying a refused connection") {
    test_listener server{false};
    source_runner run{sluice::make_socket_source("127.0.0.1", server.port())};
    REQUIRE(run.report().wait_for_event(
        error_containing("cannot connect to " + server.endpoint())));
    CHECK(run.stop());
    CHECK(run.report().count(
              started_with("connected to " + server.endpoint())) == 0);
  }
}

// -- generator source ---------------------------------------------------------

TEST_CASE("generator source produces lines of one to twelve words from a "
          "fixed vocabulary",
          "[sources][generator]") {
  source_runner run{sluice::make_generator_source(0, 7)};
  REQUIRE(run.report().wait_for_event(
      started_with("generating records unthrottled")));
  // The first records of a seed are always the same, so these counts are
  // the same in every run.
  auto lines = first_records(run, 2000);
  std::set<std::string> vocabulary;
  std::set<size_t> lengths;
  size_t bad_lines = 0;
  for (auto& line : lines) {
    auto words = split_words(line);
    lengths.insert(words.size());
    if (words.size() < 1 || words.size() > 12 ||
        !std::all_of(words.begin(), words.end(), is_lowercase_word))
      ++bad_lines;
    vocabulary.insert(words.begin(), words.end());
  }
  CHECK(bad_lines == 0);
  CHECK(lengths == std::set<size_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  // Some 13000 draws from about 1000 words reach nearly all of them.
  CHECK(vocabulary.size() <= 1000);
  CHECK(vocabulary.size() >= 990);
}

TEST_CASE("generator sources with the same seed produce the same lines",
          "[sources][generator]") {
  source_runner a{sluice::make_generator_source(0, 42)};
  source_runner b{sluice::make_generator_source(0, 42)};
  source_runner c{sluice::make_generator_source(0, 43)};
  auto xs = first_records(a, 500);
  auto ys = first_records(b, 500);
  auto zs = first_records(c, 500);
  CHECK(xs == ys);
  CHECK(xs != zs);
}

TEST_CASE("generator source paces itself at a configured rate and stops",
          "[sources][generator]") {
  auto src = sluice::make_generator_source(1000, 1);
  CHECK(src->describe() == "generator 1000 records/s");
  source_runner run{std::move(src)};
  REQUIRE(
      run.report().wait_for_event(started_with("generating 1000 records/s")));
  auto lines = first_records(run, 20);
  for (auto& line : lines) {
    auto words = split_words(line);
    CHECK(words.size() >= 1);
    CHECK(words.size() <= 12);
  }
  CHECK(sluice::make_generator_source(0, 1)->describe() ==
        "generator unthrottled");
}

TEST_CASE("generator source stops while the receiver throttles its pushes",
          "[sources][generator]") {
  // One record per second: the second push blocks in the block generator
  // until the Receiver's stop interrupts it.
  source_runner run{sluice::make_generator_source(0, 3), 1};
  REQUIRE(run.wait_for_records(1));
  CHECK(run.stop());
  CHECK(run.take().size() >= 1);
}
