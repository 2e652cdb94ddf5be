#include "apps/wordcount_graph.hpp"

#include <stdexcept>

namespace sluice::apps {

caf::config_option_adder io_options::add_to(config& cfg) {
  auto adder = cfg.app_options();
  adder.add(source, "source",
            "input: socket://host:port, dir:///abs/path or gen://RATE")
    .add(output, "output", "directory for DIR/<batch ms>/part-NNNNN files");
  return adder;
}

dstream<std::string> io_options::lines(streaming_context& ssc) const {
  if (source.empty())
    throw std::invalid_argument("--source=URI is required");
  if (output.empty())
    throw std::invalid_argument("--output=DIR is required");
  return source_from_uri(ssc, source);
}

dstream<std::string> source_from_uri(streaming_context& ssc,
                                     const std::string& uri) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("--source=" + uri + ": " + why);
  };
  auto sep = uri.find("://");
  if (sep == std::string::npos)
    throw bad("expected socket://host:port, dir:///abs/path or gen://RATE");
  auto scheme = uri.substr(0, sep);
  auto rest = uri.substr(sep + 3);
  if (scheme == "socket") {
    auto ep = parse_endpoint("source", rest);
    if (!ep)
      throw bad(describe(ep.error()));
    return ssc.socket_text_stream(ep->host, ep->port);
  }
  if (scheme == "dir") {
    if (rest.empty() || rest.front() != '/')
      throw bad("the directory must be an absolute path (dir:///abs/path)");
    return ssc.text_file_stream(rest);
  }
  if (scheme == "gen") {
    if (rest.empty() || rest.find_first_not_of("0123456789") != std::string::npos
        || rest.size() > 12)
      throw bad("the rate must be a number of records per second");
    return ssc.generator_stream(std::stoull(rest));
  }
  throw bad("unknown scheme '" + scheme + "'");
}

} // namespace sluice::apps
