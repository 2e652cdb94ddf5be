#include "actors/wal_appender.hpp"

#include "actors/atoms.hpp"
#include "messages/envelope.hpp"
#include "runtime/log.hpp"

namespace sluice {

const char* wal_appender_state::name = "wal_appender";

caf::behavior wal_appender(caf::stateful_actor<wal_appender_state>* self,
                           std::string dir, std::chrono::milliseconds rolling) {
  self->state.dir = std::move(dir);
  wal::options opts;
  opts.dir = self->state.dir;
  opts.rolling_interval_ms = rolling.count();
  opts.sync = wal::fsync_policy::always;
  auto w = wal::writer::open(std::move(opts));
  caf::error open_error;
  if (w)
    self->state.writer = std::move(*w);
  else
    open_error = w.error();
  return {
    [self, open_error](wal_append_atom, const buffer& bytes, time_ms now)
      -> caf::result<std::string, uint64_t, uint32_t> {
      auto& st = self->state;
      if (!st.writer)
        return open_error;
      auto h = st.writer->append(now, bytes.data(), bytes.size());
      if (!h)
        return h.error();
      return {h->segment, h->offset, h->length};
    },
  };
}

} // namespace sluice
