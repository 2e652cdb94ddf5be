#include "runtime/checkpoint/checkpoint_dir.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <map>
#include <tuple>

#include <unistd.h>

#include <caf/message.hpp>

#include "runtime/checkpoint/file_reader.hpp"
#include "runtime/checkpoint/state_file.hpp"
#include "runtime/error.hpp"
#include "runtime/io/errors.hpp"
#include "runtime/io/files.hpp"
#include "runtime/log.hpp"

namespace fs = std::filesystem;

namespace sluice {

namespace {

constexpr std::string_view prefix = "checkpoint-";
constexpr const char* component = "checkpoint";

/// Parses a non-negative decimal without sign or leading zeros (one name
/// per value, so two files never claim the same slot).
template <class T>
bool parse_canonical(std::string_view str, T& out) {
  if (str.empty() || (str.size() > 1 && str[0] == '0'))
    return false;
  auto [end, ec] = std::from_chars(str.data(), str.data() + str.size(), out);
  return ec == std::errc{} && end == str.data() + str.size() && out >= 0;
}

/// The text of an error for a "<file>: <why>" line.
std::string error_text(const caf::error& err, const std::string& path) {
  auto text = explanation(err);
  if (text.compare(0, path.size() + 2, path + ": ") == 0)
    return text;
  return path + ": " + text;
}

/// Deletes `path`; a file already gone is as good.
void remove_file(const std::string& path, const char* why) {
  if (::unlink(path.c_str()) == 0) {
    SLUICE_DEBUG(component, "deleted " << path << " (" << why << ")");
  } else if (errno != ENOENT) {
    SLUICE_WARN(component, "cannot delete " << path << " (" << why
                                            << "): " << io::errno_text(errno));
  }
}

/// The final name a temporary file "<name>.<pid>.<n>.tmp" was meant to get,
/// for names without dots of their own (checkpoint and state file names).
std::string_view final_name_of(std::string_view temporary,
                               std::string_view suffix = {}) {
  auto dot = temporary.find('.');
  if (dot == std::string_view::npos)
    return {};
  if (!suffix.empty() && temporary.substr(dot, suffix.size()) != suffix)
    return {};
  return temporary.substr(0, dot + suffix.size());
}

} // namespace

std::string checkpoint_file_name(int64_t time_ms, uint32_t seq) {
  auto name = std::string{prefix} + std::to_string(time_ms);
  if (seq > 0)
    name += "-" + std::to_string(seq);
  return name;
}

std::optional<std::pair<int64_t, uint32_t>>
parse_checkpoint_file_name(std::string_view name) {
  if (name.substr(0, prefix.size()) != prefix)
    return std::nullopt;
  name.remove_prefix(prefix.size());
  auto dash = name.find('-');
  int64_t time = 0;
  uint32_t seq = 0;
  if (!parse_canonical(name.substr(0, dash), time))
    return std::nullopt;
  if (dash != std::string_view::npos
      && (!parse_canonical(name.substr(dash + 1), seq) || seq == 0))
    return std::nullopt;
  return std::make_pair(time, seq);
}

checkpoint_dir::checkpoint_dir(std::string dir, size_t keep)
  : dir_(std::move(dir)), keep_(std::max<size_t>(keep, 1)) {
  // Paths are built as dir_ + "/" + name.
  while (dir_.size() > 1 && dir_.back() == '/')
    dir_.pop_back();
}

std::string checkpoint_dir::path_of(const std::string& name) const {
  return dir_ + "/" + name;
}

std::string checkpoint_dir::state_dir() const {
  return dir_ + "/state";
}

std::string checkpoint_dir::state_path(const std::string& node_id,
                                       int64_t batch_ms) const {
  return state_dir() + "/" + state_file_name(node_id, batch_ms);
}

caf::error checkpoint_dir::list(std::vector<entry>& files,
                                std::vector<std::string>& temporaries) const {
  files.clear();
  temporaries.clear();
  std::error_code ec;
  fs::directory_iterator it{dir_, ec};
  if (ec == std::errc::no_such_file_or_directory)
    return caf::none;
  for (; !ec && it != fs::directory_iterator{}; it.increment(ec)) {
    auto name = it->path().filename().string();
    std::error_code type_ec;
    if (it->is_directory(type_ec))
      continue;
    if (auto key = parse_checkpoint_file_name(name))
      files.push_back(entry{key->first, key->second, std::move(name)});
    else if (name.compare(0, prefix.size(), prefix) == 0
             && io::is_temporary_file_name(name))
      temporaries.push_back(std::move(name));
  }
  if (ec)
    return make_error(errc::io_failed,
                      "cannot list " + dir_ + ": " + ec.message());
  std::sort(files.begin(), files.end(), [](const entry& x, const entry& y) {
    return std::tie(x.time_ms, x.seq) > std::tie(y.time_ms, y.seq);
  });
  std::sort(temporaries.begin(), temporaries.end());
  return caf::none;
}

std::vector<std::string> checkpoint_dir::files() const {
  std::vector<entry> entries;
  std::vector<std::string> temporaries;
  std::vector<std::string> result;
  if (list(entries, temporaries))
    return result;
  for (auto& e : entries)
    result.push_back(path_of(e.name));
  return result;
}

namespace {

/// Reads and validates one checkpoint file named for `time_ms`.
caf::expected<checkpoint_metadata> read_checkpoint(const std::string& path,
                                                   int64_t time_ms) {
  auto bytes = read_whole_file(path, checkpoint_header_size
                                       + max_checkpoint_body_size);
  if (!bytes)
    return std::move(bytes.error());
  auto meta = decode_checkpoint(*bytes, path);
  if (!meta)
    return meta;
  // A file renamed by hand, or whose time field was written wrong, would
  // make recovery resume at the wrong batch.
  if (meta->checkpoint_time_ms != time_ms)
    return make_error(errc::corrupt_data,
                      path + ": named for batch " + std::to_string(time_ms)
                        + " but holds batch "
                        + std::to_string(meta->checkpoint_time_ms));
  return meta;
}

} // namespace

caf::expected<std::optional<checkpoint_dir::loaded>>
checkpoint_dir::load_newest(const usable_fn& usable) const {
  std::vector<entry> entries;
  std::vector<std::string> temporaries;
  if (auto err = list(entries, temporaries))
    return err;
  if (entries.empty())
    return std::optional<loaded>{};
  std::vector<std::string> skipped;
  for (auto& name : temporaries)
    skipped.push_back(path_of(name)
                      + ": temporary file of an unfinished write, ignored");
  bool refused = false;
  for (auto& e : entries) {
    auto path = path_of(e.name);
    auto meta = read_checkpoint(path, e.time_ms);
    if (!meta) {
      skipped.push_back(error_text(meta.error(), path));
      continue;
    }
    if (auto why = usable ? usable(*meta, path) : std::string{}; !why.empty()) {
      skipped.push_back(path + ": " + why);
      refused = true;
      continue;
    }
    return std::optional<loaded>{
      loaded{std::move(*meta), std::move(path), std::move(skipped)}};
  }
  std::string what = std::string{refused ? "no usable" : "no valid"}
                     + " checkpoint in " + dir_ + ": ";
  for (size_t i = 0; i < skipped.size(); ++i)
    what += (i > 0 ? "; " : "") + skipped[i];
  return make_error(errc::corrupt_data, std::move(what));
}

caf::error checkpoint_dir::write(const checkpoint_metadata& meta) {
  auto time = meta.checkpoint_time_ms;
  if (time < 0)
    return make_error(errc::io_failed,
                      "cannot write a checkpoint for the negative batch time "
                        + std::to_string(time) + " in " + dir_);
  if (auto err = io::ensure_directory(dir_))
    return err;
  std::vector<entry> entries;
  std::vector<std::string> temporaries;
  if (auto err = list(entries, temporaries))
    return err;
  // A second checkpoint for the same batch (say, at generation and again at
  // completion) gets the next sequence number instead of replacing the
  // first, so a crash never leaves fewer valid files than before.
  uint32_t seq = 0;
  for (auto& e : entries)
    if (e.time_ms == time)
      seq = std::max(seq, e.seq + 1);
  auto path = path_of(checkpoint_file_name(time, seq));
  auto bytes = encode_checkpoint(meta);
  // Refused here rather than written: load_newest would refuse it, and a
  // checkpoint that cannot be loaded must not push valid ones out.
  if (bytes.size() > checkpoint_header_size + max_checkpoint_body_size)
    return make_error(errc::io_failed,
                      "cannot write " + path + ": the checkpoint has "
                        + std::to_string(bytes.size())
                        + " bytes, more than the limit of "
                        + std::to_string(max_checkpoint_body_size));
  if (auto err = io::write_file_atomically(path, bytes.data(), bytes.size()))
    return err;
  clean_up();
  return caf::none;
}

void checkpoint_dir::clean_up() {
  // Runs only after the new checkpoint is durable. Deletions are not
  // fsync'ed: one lost in a crash leaves a file that the next cleanup
  // deletes again, never a missing one.
  std::vector<entry> entries;
  std::vector<std::string> temporaries;
  if (auto err = list(entries, temporaries)) {
    SLUICE_WARN(component, "cleanup skipped: " << describe(err));
    return;
  }
  if (entries.empty())
    return;
  auto kept_count = std::min(entries.size(), keep_);
  for (size_t i = kept_count; i < entries.size(); ++i)
    remove_file(path_of(entries[i].name), "retention");
  entries.resize(kept_count);
  // A temporary older than every kept checkpoint is a crashed write: its
  // file would be deleted by retention anyway. Newer ones may belong to a
  // write in progress.
  auto& oldest = entries.back();
  for (auto& name : temporaries) {
    auto key = parse_checkpoint_file_name(final_name_of(name));
    if (key && std::tie(key->first, key->second)
                 < std::tie(oldest.time_ms, oldest.seq))
      remove_file(path_of(name), "temporary file of a crashed write");
  }
  clean_up_states(entries);
}

void checkpoint_dir::clean_up_states(const std::vector<entry>& kept) {
  // Per node, the oldest state batch any kept (and valid) checkpoint
  // references: recovery may start from any kept checkpoint, so every file
  // they reference stays, and so does everything newer (a state file is
  // written before the first checkpoint that references it).
  std::map<std::string, int64_t> oldest_ref;
  for (auto& e : kept) {
    auto meta = read_checkpoint(path_of(e.name), e.time_ms);
    if (!meta) {
      // A corrupt (or meanwhile deleted) checkpoint can never be loaded, so
      // its references protect nothing. A file we merely failed to read
      // (EIO, EMFILE) may be fine: keep every state file this time.
      auto& err = meta.error();
      if (err.category() != error_category()
          || err.code() == static_cast<uint8_t>(errc::io_failed)) {
        SLUICE_WARN(component, "state cleanup skipped: "
                                 << describe(meta.error()));
        return;
      }
      SLUICE_DEBUG(component, "cleanup ignores " << describe(meta.error()));
      continue;
    }
    for (auto& st : meta->states) {
      auto [it, added] = oldest_ref.emplace(st.node_id, st.batch_ms);
      if (!added)
        it->second = std::min(it->second, st.batch_ms);
    }
  }
  if (oldest_ref.empty())
    return;
  auto sdir = state_dir();
  std::error_code ec;
  fs::directory_iterator it{sdir, ec};
  if (ec == std::errc::no_such_file_or_directory)
    return;
  for (; !ec && it != fs::directory_iterator{}; it.increment(ec)) {
    auto name = it->path().filename().string();
    auto temporary = io::is_temporary_file_name(name);
    auto key = parse_state_file_name(temporary ? final_name_of(name, ".state")
                                               : std::string_view{name});
    if (!key)
      continue;
    auto ref = oldest_ref.find(key->node_id);
    if (ref != oldest_ref.end() && key->batch_ms < ref->second)
      remove_file(sdir + "/" + name, temporary ? "temporary file of an old batch"
                                               : "older than every kept reference");
  }
  if (ec)
    SLUICE_WARN(component, "cannot list " << sdir << ": " << ec.message());
}

} // namespace sluice
