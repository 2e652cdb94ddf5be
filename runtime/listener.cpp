#include "runtime/listener.hpp"

namespace sluice {

listener::~listener() = default;

void listener::on_batch_completed(const batch_info&) {
  // nop
}

void listener::on_receiver_event(const receiver_info&) {
  // nop
}

void listener::on_node_event(const node_info&) {
  // nop
}

void listener::on_recovery(const recovery_info&) {
  // nop
}

void listener_bus::add(std::shared_ptr<listener> x) {
  std::lock_guard<std::mutex> guard{mtx_};
  listeners_.push_back(std::move(x));
}

std::vector<std::shared_ptr<listener>> listener_bus::snapshot() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return listeners_;
}

void listener_bus::batch_completed(const batch_info& x) const {
  for (auto& l : snapshot())
    l->on_batch_completed(x);
}

void listener_bus::receiver_event(const receiver_info& x) const {
  for (auto& l : snapshot())
    l->on_receiver_event(x);
}

void listener_bus::node_event(const node_info& x) const {
  for (auto& l : snapshot())
    l->on_node_event(x);
}

void listener_bus::recovery(const recovery_info& x) const {
  for (auto& l : snapshot())
    l->on_recovery(x);
}

} // namespace sluice
