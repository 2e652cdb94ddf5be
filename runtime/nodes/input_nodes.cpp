#include "runtime/nodes/input_nodes.hpp"

namespace sluice {

receiver_input_base::~receiver_input_base() = default;

queue_input_base::~queue_input_base() = default;

directory_input_node::directory_input_node(std::string dir)
  : typed_node<std::string>(node_kind::directory_input, "text_file_stream", {}),
    dir_(std::move(dir)) {
}

void directory_input_node::compute(task_context& ctx, uint32_t p,
                                   std::vector<std::string>& out) {
  auto before = out.size();
  read_lines(ctx.file(index(), p), out);
  ctx.count_input(out.size() - before);
}

} // namespace sluice
