#pragma once

// What the operator tests (test_operators_*.cpp, test_graph_building.cpp)
// share: short names for the record vectors they compare and the functions
// their graphs are built from.

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sluice::test {

using ints = std::vector<int64_t>;
using strings = std::vector<std::string>;
using counts = std::vector<std::pair<std::string, int64_t>>;

inline int64_t add(int64_t a, int64_t b) {
  return a + b;
}

inline std::pair<std::string, int64_t> one(std::string w) {
  return {std::move(w), 1};
}

/// `xs` sorted: partition order is not part of any operator's contract.
template <class T>
std::vector<T> sorted(std::vector<T> xs) {
  std::sort(xs.begin(), xs.end());
  return xs;
}

} // namespace sluice::test
