#include "runtime/sources/source.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "runtime/io/errors.hpp"
#include "runtime/io/unique_fd.hpp"

namespace sluice {

namespace {

using std::chrono::milliseconds;

/// The longest a poll() blocks: bounds how late a stop request is noticed.
constexpr int poll_timeout_ms = 100;

constexpr milliseconds initial_backoff{100};
constexpr milliseconds max_backoff{2000};

/// A connect whose SYN is silently dropped would otherwise hang for minutes
/// in the kernel's retransmissions; giving up turns it into a reported,
/// retried failure like any other.
constexpr milliseconds connect_timeout{10000};

/// On a stop, bytes that already arrived are read before the connection
/// closes: the peer took them as delivered, and a socket stream has no
/// acknowledgements that would make it send them again. Reading ends once
/// nothing came for drain_quiet, or after drain_limit (a peer that never
/// pauses); what arrives after the close is lost, as on any TCP stream
/// without acknowledgements.
constexpr int drain_quiet_ms = 20;
constexpr milliseconds drain_limit{200};

/// Bytes per recv(): a busy stream costs few system calls, and the line
/// buffer grows to the size of the longest line only.
constexpr size_t read_buffer_size = 64 * 1024;

/// "host:port", with brackets around IPv6 literals so the port stays legible.
std::string format_endpoint(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos)
    return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string format_duration(milliseconds d) {
  return std::to_string(d.count()) + "ms";
}

/// Frees a getaddrinfo() result.
struct addrinfo_deleter {
  void operator()(addrinfo* xs) const noexcept { ::freeaddrinfo(xs); }
};

using addrinfo_ptr = std::unique_ptr<addrinfo, addrinfo_deleter>;

/// Pushes one complete line and empties `line`, keeping its capacity so the
/// next line reuses the allocation.
void push_line(std::string& line, block_generator& out) {
  if (!line.empty() && line.back() == '\r')
    line.pop_back();
  out.push(line);
  line.clear();
}

/// Cuts received bytes into lines. `pending` holds the start of a line whose
/// '\n' has not arrived yet.
void push_lines(const char* first, const char* last, std::string& pending,
                block_generator& out) {
  while (first != last) {
    auto n = static_cast<size_t>(last - first);
    auto nl = static_cast<const char*>(std::memchr(first, '\n', n));
    if (nl == nullptr) {
      pending.append(first, last);
      return;
    }
    pending.append(first, nl);
    push_line(pending, out);
    first = nl + 1;
  }
}

/// Connects `sock` to one resolved address without blocking for longer than
/// one poll interval at a time. Returns 0 or an errno value.
int connect_to(const addrinfo& addr, stop_signal& stop, io::unique_fd& sock) {
  sock = io::unique_fd{::socket(addr.ai_family,
                                addr.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                addr.ai_protocol)};
  if (!sock)
    return errno;
  if (::connect(sock.get(), addr.ai_addr, addr.ai_addrlen) == 0)
    return 0;
  // A non-blocking connect interrupted by a signal still proceeds in the
  // background, exactly like one that reports EINPROGRESS.
  if (errno != EINPROGRESS && errno != EINTR)
    return errno;
  auto deadline = std::chrono::steady_clock::now() + connect_timeout;
  for (;;) {
    if (stop.stop_requested())
      return ECANCELED;
    pollfd pfd{sock.get(), POLLOUT, 0};
    auto n = ::poll(&pfd, 1, poll_timeout_ms);
    if (n > 0)
      break;
    if (n < 0 && errno != EINTR)
      return errno;
    if (std::chrono::steady_clock::now() >= deadline)
      return ETIMEDOUT;
  }
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    return errno;
  return err;
}

/// socketTextStream: see make_socket_source.
class socket_source final : public source {
public:
  socket_source(std::string host, uint16_t port)
      : host_(std::move(host)), port_(port),
        endpoint_(format_endpoint(host_, port_)) {}

  std::string describe() const override { return "socket " + endpoint_; }

  void run(block_generator& out, stop_signal& stop,
           source_reporter& report) override;

private:
  /// Opens a connection to the first address of host_ that accepts one.
  /// On failure, returns an invalid guard and sets `error`.
  io::unique_fd connect_once(stop_signal& stop, std::string& error) const;

  /// Reads lines until the peer closes, a receive fails or stop is
  /// requested. Returns how the connection ended, for the error report, and
  /// sets `received` if any bytes arrived.
  std::string read_until_closed(int fd, block_generator& out, stop_signal& stop,
                                bool& received);

  /// Reads what arrived on `fd` until it is quiet (see drain_quiet_ms).
  void drain(int fd, block_generator& out);

  std::string host_;
  uint16_t port_;
  std::string endpoint_;

  // Used by the source thread only; kept across connections so a reconnect
  // allocates nothing.
  std::unique_ptr<char[]> buf_;
  std::string pending_;
};

void socket_source::run(block_generator& out, stop_signal& stop,
                        source_reporter& report) {
  auto backoff = initial_backoff;
  // The cause last reported: a server that stays down is reported once, not
  // at every retry.
  std::string last_error;
  while (!stop.stop_requested()) {
    std::string error;
    auto sock = connect_once(stop, error);
    if (stop.stop_requested())
      return;
    if (!sock) {
      if (error != last_error) {
        report.error(error + ", retrying in " + format_duration(backoff));
        last_error = std::move(error);
      }
    } else {
      last_error.clear();
      report.started("connected to " + endpoint_);
      bool received = false;
      auto how = read_until_closed(sock.get(), out, stop, received);
      sock.close();
      if (stop.stop_requested())
        return;
      // A server that accepts and closes at once must not make us reconnect
      // in a tight loop, so only a connection that delivered data counts as
      // a success for the backoff.
      if (received)
        backoff = initial_backoff;
      report.error("connection to " + endpoint_ + " " + how +
                   ", reconnecting in " + format_duration(backoff));
    }
    if (stop.wait_for(backoff))
      return;
    backoff = std::min(backoff * 2, max_backoff);
  }
}

io::unique_fd socket_source::connect_once(stop_signal& stop,
                                         std::string& error) const {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto service = std::to_string(port_);
  auto rc = ::getaddrinfo(host_.c_str(), service.c_str(), &hints, &found);
  if (rc != 0) {
    auto why = rc == EAI_SYSTEM ? io::errno_text(errno) : ::gai_strerror(rc);
    error = "cannot connect to " + endpoint_ + " (" + why + ")";
    return io::unique_fd{};
  }
  addrinfo_ptr addrs{found};
  // Try every address (e.g. ::1 and 127.0.0.1 for localhost); the last
  // failure is the one reported.
  int err = EADDRNOTAVAIL;
  for (auto addr = addrs.get(); addr != nullptr; addr = addr->ai_next) {
    io::unique_fd sock;
    err = connect_to(*addr, stop, sock);
    if (err == 0)
      return sock;
    if (stop.stop_requested())
      break;
  }
  error = "cannot connect to " + endpoint_ + " (" + io::errno_text(err) + ")";
  return io::unique_fd{};
}

std::string socket_source::read_until_closed(int fd, block_generator& out,
                                             stop_signal& stop,
                                             bool& received) {
  if (!buf_)
    buf_ = std::make_unique<char[]>(read_buffer_size);
  pending_.clear();
  std::string how;
  while (how.empty()) {
    if (stop.stop_requested()) {
      drain(fd, out);
      how = "closed on stop";
      break;
    }
    pollfd pfd{fd, POLLIN, 0};
    auto n = ::poll(&pfd, 1, poll_timeout_ms);
    if (n == 0 || (n < 0 && errno == EINTR))
      continue;
    if (n < 0) {
      how = "closed (" + io::errno_text(errno) + ")";
      break;
    }
    // POLLHUP and POLLERR also end up here: recv() then reports EOF or the
    // pending error.
    auto got = ::recv(fd, buf_.get(), read_buffer_size, 0);
    if (got > 0) {
      received = true;
      push_lines(buf_.get(), buf_.get() + got, pending_, out);
    } else if (got == 0) {
      how = "closed by the peer";
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      how = "closed (" + io::errno_text(errno) + ")";
    }
  }
  // The peer may close without a final '\n'; the bytes of a cut line are
  // still data, so deliver them rather than drop them.
  if (!pending_.empty())
    push_line(pending_, out);
  return how;
}

void socket_source::drain(int fd, block_generator& out) {
  auto deadline = std::chrono::steady_clock::now() + drain_limit;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    auto n = ::poll(&pfd, 1, drain_quiet_ms);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    auto got = ::recv(fd, buf_.get(), read_buffer_size, 0);
    if (got > 0)
      push_lines(buf_.get(), buf_.get() + got, pending_, out);
    else if (got == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
      return;
  }
}

} // namespace

source_ptr make_socket_source(std::string host, uint16_t port) {
  return std::make_unique<socket_source>(std::move(host), port);
}

} // namespace sluice
