#include "runtime/recovery/driver_log.hpp"

#include <filesystem>
#include <functional>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include "messages/driver_log.capnp.h"

namespace sluice {

namespace {

buffer encode_event(const std::function<void(wire::DriverLogEvent::Builder)>& f) {
  capnp::MallocMessageBuilder b;
  f(b.initRoot<wire::DriverLogEvent>());
  return buffer::from_builder(b);
}

void apply(driver_log_state& st, wire::DriverLogEvent::Reader ev) {
  switch (ev.which()) {
    case wire::DriverLogEvent::BLOCK_ADDED: {
      auto added = ev.getBlockAdded();
      st.tracker.replay_added(added.getStream(), decode(added.getBlock()));
      break;
    }
    case wire::DriverLogEvent::BATCH_ALLOCATED: {
      auto alloc = ev.getBatchAllocated();
      st.tracker.replay_allocated(alloc.getBatchTime(),
                                  decode_inputs(alloc.getInputs()));
      break;
    }
    case wire::DriverLogEvent::BATCH_CLEANED:
      st.tracker.replay_cleaned(ev.getBatchCleaned().getBatchTime());
      break;
  }
}

} // namespace

std::string driver_log::dir_of(const std::string& checkpoint_dir) {
  return (std::filesystem::path{checkpoint_dir} / "driver-wal").string();
}

driver_log::driver_log(std::unique_ptr<wal::writer> w) : writer_(std::move(w)) {
}

caf::expected<std::shared_ptr<driver_log>>
driver_log::open(const std::string& checkpoint_dir, time_ms rolling_interval) {
  wal::options opts;
  opts.dir = dir_of(checkpoint_dir);
  opts.rolling_interval_ms = rolling_interval;
  opts.sync = wal::fsync_policy::always;
  auto w = wal::writer::open(std::move(opts));
  if (!w)
    return w.error();
  return std::shared_ptr<driver_log>{new driver_log(std::move(*w))};
}

caf::error driver_log::append(time_ms now, const buffer& record) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto h = writer_->append(now, record.data(), record.size());
  if (!h)
    return h.error();
  return caf::none;
}

caf::error driver_log::block_added(time_ms now, uint32_t stream,
                                   const block_ref& ref) {
  return append(now, encode_event([&](wire::DriverLogEvent::Builder ev) {
                  auto added = ev.initBlockAdded();
                  added.setStream(stream);
                  encode(ref, added.initBlock());
                }));
}

caf::error driver_log::batch_allocated(time_ms now, time_ms batch,
                                       const batch_inputs& inputs) {
  return append(now, encode_event([&](wire::DriverLogEvent::Builder ev) {
                  auto alloc = ev.initBatchAllocated();
                  alloc.setBatchTime(batch);
                  encode_inputs(inputs, alloc.initInputs(
                                          static_cast<unsigned>(inputs.size())));
                }));
}

caf::error driver_log::batch_cleaned(time_ms now, time_ms batch) {
  return append(now, encode_event([&](wire::DriverLogEvent::Builder ev) {
                  ev.initBatchCleaned().setBatchTime(batch);
                }));
}

caf::expected<size_t> driver_log::delete_older_than(time_ms threshold) {
  std::lock_guard<std::mutex> guard{mtx_};
  return writer_->delete_older_than(threshold);
}

caf::expected<driver_log_state> replay_driver_log(const std::string& checkpoint_dir) {
  driver_log_state st;
  auto dir = driver_log::dir_of(checkpoint_dir);
  if (!std::filesystem::exists(dir))
    return st;
  std::string bad;
  auto report = wal::recover(dir, [&](const wal::handle& h, const buffer& bytes) {
    if (!bad.empty())
      return;
    try {
      capnp::FlatArrayMessageReader reader{bytes.words()};
      apply(st, reader.getRoot<wire::DriverLogEvent>());
      ++st.records;
    } catch (const kj::Exception& e) {
      // The frame's CRC was right, so these bytes are what was written:
      // a record this build cannot read is a real incompatibility.
      bad = h.segment + " at offset " + std::to_string(h.offset) + ": "
            + e.getDescription().cStr();
    }
  });
  if (!report)
    return report.error();
  if (!bad.empty())
    return make_error(errc::corrupt_data,
                      "driver log " + dir + ": unreadable record in " + bad);
  st.cut = std::move(report->cut);
  return st;
}

} // namespace sluice
