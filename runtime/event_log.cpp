#include "runtime/event_log.hpp"

#include <cerrno>
#include <chrono>

#include <nlohmann/json.hpp>

#include "runtime/error.hpp"
#include "runtime/io/errors.hpp"

namespace sluice {

namespace {

using json = nlohmann::json;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

json head(const char* event) {
  return json{{"event", event}, {"at", now_ms()}};
}

const char* name(receiver_info::kind k) {
  switch (k) {
    case receiver_info::kind::started:
      return "started";
    case receiver_info::kind::error:
      return "error";
    case receiver_info::kind::stopped:
      return "stopped";
    case receiver_info::kind::failed:
      return "failed";
    case receiver_info::kind::placed:
      return "placed";
    case receiver_info::kind::lost:
      return "lost";
  }
  return "unknown";
}

const char* name(node_info::kind k) {
  switch (k) {
    case node_info::kind::joined:
      return "joined";
    case node_info::kind::refreshed:
      return "refreshed";
    case node_info::kind::lost:
      return "lost";
    case node_info::kind::left:
      return "left";
  }
  return "unknown";
}

} // namespace

caf::expected<std::shared_ptr<event_log>> event_log::open(const std::string& path) {
  auto* f = std::fopen(path.c_str(), "a");
  if (f == nullptr)
    return io::file_error("cannot open the event log", path, errno);
  return std::shared_ptr<event_log>{new event_log(f)};
}

event_log::~event_log() {
  std::fclose(file_);
}

void event_log::write(const std::string& line) {
  std::lock_guard<std::mutex> guard{mtx_};
  // Best effort: a full disk must not stop the engine; the lines lost are
  // the log's, not the data's.
  std::fputs(line.c_str(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);
}

void event_log::on_batch_completed(const batch_info& x) {
  auto j = head("batch_completed");
  j["batch_time"] = x.batch_time;
  j["records"] = x.records;
  j["bytes"] = x.bytes;
  j["scheduling_delay"] = x.scheduling_delay();
  j["processing_time"] = x.processing_time();
  j["total_delay"] = x.total_delay();
  j["jobs"] = x.jobs;
  j["failed_jobs"] = x.failed_jobs;
  if (!x.error.empty())
    j["error"] = x.error;
  write(j.dump());
}

void event_log::on_receiver_event(const receiver_info& x) {
  auto j = head("receiver");
  j["what"] = name(x.what);
  j["stream"] = x.stream;
  j["node"] = x.node;
  j["message"] = x.message;
  write(j.dump());
}

void event_log::on_node_event(const node_info& x) {
  auto j = head("node");
  j["what"] = name(x.what);
  j["node"] = x.node;
  j["slots"] = x.slots;
  j["reason"] = x.reason;
  write(j.dump());
}

void event_log::on_recovery(const recovery_info& x) {
  auto j = head("recovery");
  j["what"] = x.what == recovery_info::kind::started ? "started" : "finished";
  j["checkpoint"] = x.checkpoint;
  j["recomputed"] = x.recomputed;
  j["rerun"] = x.rerun;
  write(j.dump());
}

} // namespace sluice
