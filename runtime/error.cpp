#include "runtime/error.hpp"

#include <caf/message.hpp>

namespace sluice {

const char* to_string(errc x) {
  switch (x) {
    case errc::malformed_message:
      return "malformed_message";
    case errc::bad_config:
      return "bad_config";
    case errc::source_failed:
      return "source_failed";
    case errc::io_failed:
      return "io_failed";
    case errc::task_failed:
      return "task_failed";
    case errc::not_found:
      return "not_found";
    case errc::graph_mismatch:
      return "graph_mismatch";
    case errc::refused:
      return "refused";
    case errc::bad_graph:
      return "bad_graph";
    case errc::state_lost:
      return "state_lost";
    case errc::corrupt_data:
      return "corrupt_data";
    case errc::node_failed:
      return "node_failed";
  }
  return "unknown";
}

namespace {

std::string render(uint8_t code, const caf::message& ctx) {
  std::string result = to_string(static_cast<errc>(code));
  if (ctx.match_elements<std::string>()) {
    result += ": ";
    result += ctx.get_as<std::string>(0);
  }
  return result;
}

} // namespace

std::string describe(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() == error_category())
    return render(err.code(), err.context());
  return caf::actor_system_config::render(err);
}

std::string explanation(const caf::error& err) {
  if (err.category() == error_category()
      && err.context().match_elements<std::string>())
    return err.context().get_as<std::string>(0);
  return describe(err);
}

void add_error_category(caf::actor_system_config& cfg) {
  cfg.add_error_category(error_category(),
                         [](uint8_t code, caf::atom_value,
                            const caf::message& ctx) {
                           return render(code, ctx);
                         });
}

} // namespace sluice
