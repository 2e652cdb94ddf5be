#include "tests/support/helpers.hpp"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sys/mount.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace sluice::test {

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos;
       pos = text.find(what, pos + what.size()))
    ++n;
  return n;
}

bool wait_until(const std::function<bool()>& cond,
                std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (cond())
      return true;
    if (std::chrono::steady_clock::now() >= until)
      return cond();
    // Polling interval of a condition check, not a synchronisation sleep.
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
}

temp_dir::temp_dir(const std::string& tag) {
  std::string pattern = "/tmp/" + tag + "-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

child_process::child_process(std::vector<std::string> argv,
                             const std::string& log_dir,
                             const std::string& name) {
  out_path_ = log_dir + "/" + name + ".out";
  err_path_ = log_dir + "/" + name + ".err";
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    auto out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    auto err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

child_process::~child_process() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
}

void child_process::signal(int sig) {
  if (!reaped_)
    ::kill(pid_, sig);
}

bool child_process::running() {
  if (reaped_)
    return false;
  auto rc = ::waitpid(pid_, &status_, WNOHANG);
  if (rc == pid_)
    reaped_ = true;
  return !reaped_;
}

int child_process::wait(std::chrono::milliseconds deadline) {
  if (wait_until([this] { return !running(); }, deadline))
    return status_;
  return -1;
}

std::string child_process::out() const {
  return read_file(out_path_);
}

std::string child_process::err() const {
  return read_file(err_path_);
}

namespace {

int listen_socket(uint16_t& port) {
  auto fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || ::listen(fd, 16) != 0)
    throw std::runtime_error(std::string{"cannot listen: "} + std::strerror(errno));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

} // namespace

text_server::text_server(std::string text, double lines_per_second, bool resume)
  : text_(std::move(text)),
    lines_per_second_(lines_per_second),
    resume_(resume),
    stop_(std::make_shared<std::atomic<bool>>(false)),
    sent_(std::make_shared<std::atomic<bool>>(false)),
    finished_(std::make_shared<std::atomic<bool>>(false)),
    lines_sent_(std::make_shared<std::atomic<size_t>>(0)) {
  listen_fd_ = listen_socket(port_);
  thread_ = std::thread{[this] { serve(); }};
}

text_server::~text_server() {
  *stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

bool text_server::sent() const {
  return *sent_;
}

bool text_server::finished() const {
  return *finished_;
}

size_t text_server::lines_sent() const {
  return *lines_sent_;
}

std::vector<size_t> text_server::client_starts() const {
  std::lock_guard<std::mutex> guard{starts_mtx_};
  return client_starts_;
}

std::pair<size_t, size_t> text_server::send_text(int fd, size_t from,
                                                 size_t line) {
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  auto first_line = line;
  size_t done = from;   // bytes sent
  size_t lines = line;  // complete lines among them
  size_t line_end = from; // end of the last complete line
  while (done < text_.size() && !*stop_) {
    // Unpaced: as much as the socket takes. Paced: the lines due by now.
    auto end = std::min(text_.size(), done + 64 * 1024);
    if (lines_per_second_ > 0) {
      auto elapsed = std::chrono::duration<double>(clock::now() - start).count();
      auto due = first_line + static_cast<size_t>(elapsed * lines_per_second_) + 1;
      if (due <= lines) {
        // Pacing, not synchronisation: the next line is due in a moment.
        auto next = start + std::chrono::duration_cast<clock::duration>(
                              std::chrono::duration<double>(
                                static_cast<double>(lines - first_line)
                                / lines_per_second_));
        std::this_thread::sleep_until(std::min(next, clock::now()
                                                       + std::chrono::milliseconds{20}));
        continue;
      }
      end = done;
      for (auto n = lines; n < due && end < text_.size(); ++n) {
        auto nl = text_.find('\n', end);
        end = nl == std::string::npos ? text_.size() : nl + 1;
      }
    }
    auto n = ::send(fd, text_.data() + done, end - done, MSG_NOSIGNAL);
    if (n <= 0)
      break;
    for (auto i = done; i < done + static_cast<size_t>(n); ++i)
      if (text_[i] == '\n') {
        ++lines;
        line_end = i + 1;
      }
    done += static_cast<size_t>(n);
    *lines_sent_ = lines;
  }
  // Closed before the flags are set: whoever sees sent() may expect the
  // peer to see the end of the stream.
  ::close(fd);
  if (done == text_.size())
    line_end = done;
  *sent_ = done == text_.size();
  return {line_end, lines};
}

void text_server::serve() {
  bool first = true;
  size_t offset = 0; // where the next client starts (resume)
  size_t line = 0;
  std::vector<int> idle;
  while (!*stop_) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 50) <= 0)
      continue;
    auto fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0)
      continue;
    if (!first && (!resume_ || *sent_)) {
      idle.push_back(fd); // later clients get nothing
      continue;
    }
    first = false;
    {
      std::lock_guard<std::mutex> guard{starts_mtx_};
      client_starts_.push_back(line);
    }
    std::tie(offset, line) = send_text(fd, offset, line); // closes fd
    if (!resume_ || *sent_)
      *finished_ = true;
  }
  for (auto fd : idle)
    ::close(fd);
}

uint16_t refused_port() {
  uint16_t port = 0;
  auto fd = listen_socket(port);
  ::close(fd);
  return port;
}

uint16_t free_port() {
  uint16_t port = 0;
  auto fd = listen_socket(port);
  ::close(fd);
  return port;
}

std::map<std::string, int64_t> count_words(const std::string& text) {
  std::map<std::string, int64_t> result;
  size_t i = 0;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i]))
      ++i;
    auto begin = i;
    while (i < text.size() && !is_space(text[i]))
      ++i;
    if (i > begin)
      ++result[text.substr(begin, i - begin)];
  }
  return result;
}

std::map<std::string, int64_t> read_word_totals(const std::string& dir) {
  std::map<std::string, int64_t> result;
  std::error_code ec;
  if (!fs::exists(dir, ec))
    return result;
  for (auto& entry : fs::recursive_directory_iterator(dir, ec)) {
    auto name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.rfind("part-", 0) != 0)
      continue;
    std::istringstream in{read_file(entry.path().string())};
    std::string line;
    while (std::getline(in, line)) {
      auto tab = line.find('\t');
      if (tab == std::string::npos)
        throw std::runtime_error("bad output line in " + entry.path().string()
                                 + ": '" + line + "'");
      result[line.substr(0, tab)] += std::stoll(line.substr(tab + 1));
    }
  }
  return result;
}

tmpfs_mount::tmpfs_mount(const std::string& path, const std::string& size)
  : path_(path) {
  std::filesystem::create_directories(path);
  auto data = "size=" + size;
  if (::mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, data.c_str())
      == 0)
    mounted_ = true;
  else
    error_ = std::strerror(errno);
}

tmpfs_mount::~tmpfs_mount() {
  if (mounted_)
    ::umount2(path_.c_str(), MNT_DETACH);
}

std::string newest_batch(const std::string& out) {
  std::error_code ec;
  std::string best;
  long long best_t = -1;
  for (auto& e : std::filesystem::directory_iterator(out, ec)) {
    auto t = std::stoll(e.path().filename().string());
    if (t > best_t) {
      best_t = t;
      best = e.path().string();
    }
  }
  return best;
}

void move_in(const temp_dir& dir, const std::string& in, const std::string& name,
             const std::string& text) {
  write_file(dir / name, text);
  std::filesystem::rename(dir / name, in + "/" + name);
}

std::string make_text(size_t lines, uint64_t seed) {
  static const char* words[] = {"alpha", "beta",  "gamma", "delta", "epsilon",
                                "zeta",  "eta",   "theta", "iota",  "kappa",
                                "lambda", "mu",   "nu",    "xi",    "omicron"};
  std::string text;
  uint64_t x = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (size_t i = 0; i < lines; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    auto n = 1 + (x >> 33) % 8;
    for (size_t j = 0; j < n; ++j) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      if (j > 0)
        text += ' ';
      text += words[(x >> 33) % 15];
    }
    text += '\n';
  }
  return text;
}

std::string make_tagged_text(size_t lines, uint64_t seed) {
  auto plain = make_text(lines, seed);
  std::string text;
  text.reserve(plain.size() + lines * 8);
  size_t begin = 0;
  for (size_t i = 0; i < lines; ++i) {
    auto nl = plain.find('\n', begin);
    text += "L" + std::to_string(i) + " ";
    text.append(plain, begin, nl + 1 - begin);
    begin = nl + 1;
  }
  return text;
}

long long line_tag(const std::string& word) {
  if (word.size() < 2 || word[0] != 'L'
      || word.find_first_not_of("0123456789", 1) != std::string::npos)
    return -1;
  return std::stoll(word.substr(1));
}

std::string wordcount_binary() {
  return SLUICE_WORDCOUNT_BINARY;
}

std::string topk_binary() {
  return SLUICE_TOPK_BINARY;
}

} // namespace sluice::test
