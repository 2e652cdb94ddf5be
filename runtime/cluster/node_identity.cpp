#include "runtime/cluster/node_identity.hpp"

namespace sluice {

namespace {

std::string id_of(const std::string& base, uint32_t incarnation) {
  return incarnation <= 1 ? base : base + "-i" + std::to_string(incarnation);
}

} // namespace

node_identity::node_identity(std::string base) : base_(std::move(base)) {
}

std::string node_identity::current() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return id_of(base_, incarnation_);
}

uint32_t node_identity::incarnation() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return incarnation_;
}

std::string node_identity::next_incarnation() {
  std::lock_guard<std::mutex> guard{mtx_};
  return id_of(base_, ++incarnation_);
}

} // namespace sluice
