#include "runtime/checkpoint/metadata.hpp"

#include <cstdio>
#include <cstring>
#include <exception>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include "messages/checkpoint.capnp.h"
#include "messages/envelope.hpp"
#include "runtime/wal/crc32c.hpp"
#include "runtime/checkpoint/little_endian.hpp"
#include "runtime/error.hpp"

namespace sluice {

namespace {

// Header offsets; docs/checkpoint_format.md has the table.
constexpr size_t magic_offset = 0;
constexpr size_t version_offset = 8;
constexpr size_t flags_offset = 12;
constexpr size_t length_offset = 16;
constexpr size_t crc_offset = 20;
static_assert(crc_offset + 4 == checkpoint_header_size);
static_assert(checkpoint_header_size % sizeof(capnp::word) == 0);
static_assert(sizeof(checkpoint_magic) == 9);

/// The CRC covers the header up to the CRC field, then the body: a flipped
/// version or flags byte is caught like a flipped body byte.
uint32_t frame_crc(const uint8_t* file, size_t body_size) {
  auto crc = crc32c(file, crc_offset);
  return crc32c_extend(crc, file + checkpoint_header_size,
                                  body_size);
}

kj::StringPtr text(const std::string& x) {
  return {x.c_str(), x.size()};
}

std::string str(capnp::Text::Reader x) {
  return {x.cStr(), x.size()};
}

std::string hex(uint32_t x) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", x);
  return buf;
}

void fill(wire::MetadataCheckpoint::Builder root,
          const checkpoint_metadata& meta) {
  root.setFormatVersion(checkpoint_format_version);
  root.setCheckpointTime(meta.checkpoint_time_ms);
  root.setBatchInterval(meta.batch_interval_ms);
  root.setGraphFingerprint(meta.graph_fingerprint);
  auto ops = root.initOperators(static_cast<unsigned>(meta.operators.size()));
  for (unsigned i = 0; i < ops.size(); ++i) {
    auto& x = meta.operators[i];
    auto op = ops[i];
    op.setId(text(x.id));
    op.setOp(text(x.op));
    op.setSlide(x.slide_ms);
    op.setWindow(x.window_ms);
    op.setStateful(x.stateful);
    op.setCheckpointInterval(x.checkpoint_interval_ms);
  }
  root.setLastCompleted(meta.last_completed_ms);
  root.setLastGenerated(meta.last_generated_ms);
  auto pending = root.initPending(static_cast<unsigned>(meta.pending_ms.size()));
  for (unsigned i = 0; i < pending.size(); ++i)
    pending.set(i, meta.pending_ms[i]);
  auto states = root.initStates(static_cast<unsigned>(meta.states.size()));
  for (unsigned i = 0; i < states.size(); ++i) {
    auto& x = meta.states[i];
    auto st = states[i];
    st.setNodeId(text(x.node_id));
    st.setBatch(x.batch_ms);
    st.setFile(text(x.file));
    st.setPartitions(x.partitions);
  }
  auto dirs
    = root.initDirectories(static_cast<unsigned>(meta.directories.size()));
  for (unsigned i = 0; i < dirs.size(); ++i) {
    auto& x = meta.directories[i];
    dirs[i].setNodeId(text(x.node_id));
    auto seen = dirs[i].initSeen(static_cast<unsigned>(x.seen.size()));
    for (unsigned j = 0; j < seen.size(); ++j)
      seen.set(j, text(x.seen[j]));
  }
  root.setRecoveryHorizon(meta.recovery_horizon_ms);
  auto config = root.initConfig(static_cast<unsigned>(meta.config.size()));
  for (unsigned i = 0; i < config.size(); ++i) {
    config[i].setKey(text(meta.config[i].first));
    config[i].setValue(text(meta.config[i].second));
  }
  root.setWrittenAt(meta.written_at_ms);
}

checkpoint_metadata read(wire::MetadataCheckpoint::Reader root) {
  checkpoint_metadata meta;
  meta.format_version = root.getFormatVersion();
  meta.checkpoint_time_ms = root.getCheckpointTime();
  meta.batch_interval_ms = root.getBatchInterval();
  meta.graph_fingerprint = root.getGraphFingerprint();
  for (auto op : root.getOperators()) {
    checkpoint_operator x;
    x.id = str(op.getId());
    x.op = str(op.getOp());
    x.slide_ms = op.getSlide();
    x.window_ms = op.getWindow();
    x.stateful = op.getStateful();
    x.checkpoint_interval_ms = op.getCheckpointInterval();
    meta.operators.push_back(std::move(x));
  }
  meta.last_completed_ms = root.getLastCompleted();
  meta.last_generated_ms = root.getLastGenerated();
  for (auto t : root.getPending())
    meta.pending_ms.push_back(t);
  for (auto st : root.getStates()) {
    state_checkpoint_ref x;
    x.node_id = str(st.getNodeId());
    x.batch_ms = st.getBatch();
    x.file = str(st.getFile());
    x.partitions = st.getPartitions();
    meta.states.push_back(std::move(x));
  }
  for (auto dir : root.getDirectories()) {
    directory_position x;
    x.node_id = str(dir.getNodeId());
    for (auto f : dir.getSeen())
      x.seen.push_back(str(f));
    meta.directories.push_back(std::move(x));
  }
  // Version 2 fields: a version 1 file reads their schema defaults.
  meta.recovery_horizon_ms = root.getRecoveryHorizon();
  for (auto kv : root.getConfig())
    meta.config.emplace_back(str(kv.getKey()), str(kv.getValue()));
  meta.written_at_ms = root.getWrittenAt();
  return meta;
}

} // namespace

bool operator==(const checkpoint_operator& x, const checkpoint_operator& y) {
  return x.id == y.id && x.op == y.op && x.slide_ms == y.slide_ms
         && x.window_ms == y.window_ms && x.stateful == y.stateful
         && x.checkpoint_interval_ms == y.checkpoint_interval_ms;
}

bool operator==(const state_checkpoint_ref& x, const state_checkpoint_ref& y) {
  return x.node_id == y.node_id && x.batch_ms == y.batch_ms
         && x.file == y.file && x.partitions == y.partitions;
}

bool operator==(const directory_position& x, const directory_position& y) {
  return x.node_id == y.node_id && x.seen == y.seen;
}

bool operator==(const checkpoint_metadata& x, const checkpoint_metadata& y) {
  return x.format_version == y.format_version
         && x.checkpoint_time_ms == y.checkpoint_time_ms
         && x.batch_interval_ms == y.batch_interval_ms
         && x.graph_fingerprint == y.graph_fingerprint
         && x.operators == y.operators
         && x.last_completed_ms == y.last_completed_ms
         && x.last_generated_ms == y.last_generated_ms
         && x.pending_ms == y.pending_ms
         && x.recovery_horizon_ms == y.recovery_horizon_ms
         && x.states == y.states && x.directories == y.directories
         && x.config == y.config && x.written_at_ms == y.written_at_ms;
}

buffer encode_checkpoint(const checkpoint_metadata& meta) {
  capnp::MallocMessageBuilder builder;
  fill(builder.initRoot<wire::MetadataCheckpoint>(), meta);
  auto body_size = capnp::computeSerializedSizeInWords(builder)
                   * sizeof(capnp::word);
  auto [result, out] = buffer::allocate(checkpoint_header_size + body_size);
  kj::ArrayOutputStream stream{kj::arrayPtr(
    reinterpret_cast<kj::byte*>(out + checkpoint_header_size), body_size)};
  capnp::writeMessage(stream, builder);
  std::memcpy(out + magic_offset, checkpoint_magic, 8);
  le::put32(out + version_offset, checkpoint_format_version);
  le::put32(out + flags_offset, 0);
  le::put32(out + length_offset, static_cast<uint32_t>(body_size));
  le::put32(out + crc_offset, frame_crc(out, body_size));
  return result;
}

caf::expected<checkpoint_metadata>
decode_checkpoint(const buffer& bytes, const std::string& name_for_errors) {
  auto fail = [&](const std::string& why) {
    return make_error(errc::corrupt_data, name_for_errors + ": " + why);
  };
  auto size = bytes.size();
  const auto* file = bytes.data();
  // Magic first: a file that is not a checkpoint at all says so, however
  // short it is.
  if (size >= 8 && std::memcmp(file + magic_offset, checkpoint_magic, 8) != 0)
    return fail("bad magic: not a sluice metadata checkpoint");
  if (size < checkpoint_header_size)
    return fail("truncated: " + std::to_string(size)
                + " bytes, shorter than the "
                + std::to_string(checkpoint_header_size) + "-byte header");
  // Length before CRC (the CRC needs it), CRC before version and flags (a
  // flipped version byte is corruption, not a file from the future).
  uint64_t body_size = le::get32(file + length_offset);
  if (checkpoint_header_size + body_size > size)
    return fail("truncated: " + std::to_string(size)
                + " bytes, the header announces "
                + std::to_string(checkpoint_header_size + body_size));
  if (checkpoint_header_size + body_size < size)
    return fail(std::to_string(size - checkpoint_header_size - body_size)
                + " bytes after the end the header announces");
  auto stored = le::get32(file + crc_offset);
  auto computed = frame_crc(file, body_size);
  if (stored != computed)
    return fail("CRC mismatch: stored " + hex(stored) + ", computed "
                + hex(computed));
  auto version = le::get32(file + version_offset);
  if (version > checkpoint_format_version)
    return fail("format version " + std::to_string(version)
                + " is newer than this build reads (up to "
                + std::to_string(checkpoint_format_version) + ")");
  if (version < oldest_checkpoint_format_version)
    return fail("unknown format version " + std::to_string(version));
  if (auto flags = le::get32(file + flags_offset); flags != 0)
    return fail("unknown flags " + hex(flags));
  if (body_size > max_checkpoint_body_size)
    return fail("body of " + std::to_string(body_size)
                + " bytes exceeds the limit of "
                + std::to_string(max_checkpoint_body_size));
  if (body_size % sizeof(capnp::word) != 0 || body_size == 0)
    return fail("body of " + std::to_string(body_size)
                + " bytes is not a whole number of 8-byte words");
  // The buffer is 8-byte aligned and so is the body at offset 24: Cap'n
  // Proto reads it in place.
  kj::ArrayPtr<const capnp::word> words{
    reinterpret_cast<const capnp::word*>(file + checkpoint_header_size),
    static_cast<size_t>(body_size / sizeof(capnp::word))};
  try {
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = max_checkpoint_body_size / sizeof(capnp::word);
    opts.nestingLimit = static_cast<int>(max_nesting);
    capnp::FlatArrayMessageReader reader{words, opts};
    auto meta = read(reader.getRoot<wire::MetadataCheckpoint>());
    if (meta.format_version != version)
      return fail("the header says format version " + std::to_string(version)
                  + ", the body " + std::to_string(meta.format_version));
    return meta;
  } catch (const kj::Exception& e) {
    return fail(std::string{"undecodable body: "} + e.getDescription().cStr());
  } catch (const std::exception& e) {
    return fail(std::string{"undecodable body: "} + e.what());
  }
}

} // namespace sluice
