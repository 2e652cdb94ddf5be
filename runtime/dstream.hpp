#pragma once

// The typed DStream API. A dstream<T> is a handle to a node of the graph its
// streaming_context owns; operators add nodes and return new handles. Build
// the graph before start(), the same way in every process of an application.
//
// Functions given to operators run on workers, possibly on several threads
// at once: they must be thread-safe and must not capture state that differs
// between processes.

#include <cstdint>
#include <iterator>
#include <chrono>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/graph.hpp"
#include "runtime/nodes/input_nodes.hpp"
#include "runtime/nodes/narrow_nodes.hpp"
#include "runtime/nodes/output_nodes.hpp"
#include "runtime/nodes/shuffle_nodes.hpp"
#include "runtime/nodes/inverse_window_node.hpp"
#include "runtime/nodes/map_with_state_node.hpp"
#include "runtime/nodes/state_node.hpp"
#include "runtime/nodes/window_node.hpp"
#include "runtime/storage_level.hpp"

namespace sluice {

class streaming_context;

graph& graph_of(streaming_context& ctx);
uint32_t default_parallelism_of(const streaming_context& ctx);

template <class T>
struct is_pair : std::false_type {};

template <class K, class V>
struct is_pair<std::pair<K, V>> : std::true_type {};

/// The key of two pair types with the same key type (joins).
template <class A, class B>
struct common_key {};

template <class K, class V, class W>
struct common_key<std::pair<K, V>, std::pair<K, W>> {
  using type = K;
};

template <class T>
class dstream;

/// What map_with_state needs besides its function (Spark's StateSpec).
template <class K, class S>
struct state_spec {
  uint32_t partitions = 0;                ///< 0: default parallelism
  std::chrono::milliseconds timeout{0};   ///< idle keys are removed; 0: never
  std::vector<std::pair<K, S>> initial;   ///< state before the first batch
};

/// The two streams of map_with_state.
template <class K, class S, class R>
struct map_with_state_streams {
  dstream<R> mapped;                          ///< f's results, per record
  dstream<std::pair<K, S>> snapshots;         ///< every key's state, per batch
};

/// A handle to an output operation, to give it a stable id.
class output_ref {
public:
  output_ref(streaming_context* ctx, node_base* node) : ctx_(ctx), node_(node) {
  }

  /// Sets the operation's id (part of the unique id of its output
  /// partitions); throws std::invalid_argument if the id is taken.
  output_ref& name(std::string id);

  node_base* node() const noexcept {
    return node_;
  }

private:
  streaming_context* ctx_;
  node_base* node_;
};

template <class T>
class dstream {
public:
  static_assert(has_codec<T>::value,
                "records need a codec: see runtime/codec.hpp");

  using value_type = T;

  dstream(streaming_context* ctx, typed_node<T>* node) : ctx_(ctx), node_(node) {
  }

  typed_node<T>* node() const noexcept {
    return node_;
  }

  streaming_context& context() const noexcept {
    return *ctx_;
  }

  /// Gives this operator a stable id (kept across rebuilds for checkpoints);
  /// throws std::invalid_argument if the id is taken or the graph runs.
  dstream& name(std::string id) {
    if (auto err = graph_of(*ctx_).rename(node_, std::move(id)))
      throw std::invalid_argument(describe(err));
    return *this;
  }

  // -- narrow transformations -----------------------------------------------

  template <class F>
  auto map(F f) const {
    using out = std::decay_t<std::invoke_result_t<F&, T&&>>;
    return make<out, map_node<T, out, F>>(node_, std::move(f));
  }

  /// flat_map(f) with f(x) returning a range; flat_map<U>(f) with
  /// f(x, emit) calling emit(U) for each result.
  template <class U = void, class F>
  auto flat_map(F f) const {
    if constexpr (std::is_void_v<U>) {
      using range = std::decay_t<std::invoke_result_t<F&, T&&>>;
      // The iterator's value_type, not *begin: vector<bool> yields proxies.
      using out = typename std::iterator_traits<
        decltype(std::begin(std::declval<range&>()))>::value_type;
      return make<out, flat_map_node<T, out, F, false>>(node_, std::move(f));
    } else {
      return make<U, flat_map_node<T, U, F, true>>(node_, std::move(f));
    }
  }

  template <class F>
  dstream<T> filter(F f) const {
    return make<T, filter_node<T, F>>(node_, std::move(f));
  }

  /// f(std::vector<T>&&) -> std::vector<U>, once per partition.
  template <class F>
  auto map_partitions(F f) const {
    using out = typename std::invoke_result_t<F&, std::vector<T>&&>::value_type;
    return make<out, partition_fn_node<T, out, F, false>>(node_, std::move(f));
  }

  /// f(const partition_info&, std::vector<T>&&) -> std::vector<U>, once per
  /// partition of every batch: the batch time and partition are known, which
  /// is what Spark's transform is mostly used for. Closures cannot travel, so
  /// whole-batch logic runs after repartition(1).
  template <class F>
  auto transform(F f) const {
    using out = typename std::invoke_result_t<F&, const partition_info&,
                                              std::vector<T>&&>::value_type;
    return make<out, partition_fn_node<T, out, F, true>>(node_, std::move(f));
  }

  dstream<T> union_with(const dstream<T>& other) const {
    return make<T, union_node<T>>(std::vector<typed_node<T>*>{node_, other.node()});
  }

  // -- shuffles ----------------------------------------------------------------

  dstream<T> repartition(uint32_t partitions) const {
    check_partitions("repartition", partitions);
    return make<T, repartition_node<T>>(node_, partitions);
  }

  /// One record per batch: the number of records (0 for an empty batch).
  dstream<int64_t> count() const {
    return map_partitions([](std::vector<T>&& xs) {
             return std::vector<int64_t>{static_cast<int64_t>(xs.size())};
           })
      .repartition(1)
      .map_partitions([](std::vector<int64_t>&& xs) {
        return std::vector<int64_t>{std::accumulate(xs.begin(), xs.end(), int64_t{0})};
      });
  }

  /// One record per non-empty batch: f folded over all records.
  template <class F>
  dstream<T> reduce(F f) const {
    auto fold = [f](std::vector<T>&& xs) {
      std::vector<T> result;
      if (xs.empty())
        return result;
      T acc = std::move(xs.front());
      for (size_t i = 1; i < xs.size(); ++i)
        acc = f(std::move(acc), std::move(xs[i]));
      result.push_back(std::move(acc));
      return result;
    };
    return map_partitions(fold).repartition(1).map_partitions(fold);
  }

  dstream<std::pair<T, int64_t>> count_by_value(uint32_t partitions = 0) const {
    return map([](T x) { return std::pair<T, int64_t>{std::move(x), 1}; })
      .reduce_by_key([](int64_t a, int64_t b) { return a + b; }, partitions);
  }

  /// For streams of pairs: merge the values of each key with f (associative
  /// and commutative), combining on the map side first.
  template <class F>
  dstream<T> reduce_by_key(F f, uint32_t partitions = 0) const {
    static_assert(is_pair<T>::value, "reduce_by_key needs a stream of pairs");
    using value = typename T::second_type;
    return combine_by_key_impl<value>("reduce_by_key", partitions, true,
                                      [](value v) { return v; }, f, f);
  }

  /// For streams of pairs: all values of each key, in no particular order.
  auto group_by_key(uint32_t partitions = 0) const {
    static_assert(is_pair<T>::value, "group_by_key needs a stream of pairs");
    using value = typename T::second_type;
    using values = std::vector<value>;
    return combine_by_key_impl<values>(
      "group_by_key", partitions, false, [](value v) { return values{std::move(v)}; },
      [](values c, value v) {
        c.push_back(std::move(v));
        return c;
      },
      [](values a, values b) {
        a.insert(a.end(), std::make_move_iterator(b.begin()),
                 std::make_move_iterator(b.end()));
        return a;
      });
  }

  /// The general keyed shuffle: create(v) starts a combiner, merge_value(c, v)
  /// adds a value, merge_combiners(c1, c2) merges two (all return the
  /// combiner).
  template <class Create, class MergeValue, class MergeCombiners>
  auto combine_by_key(Create create, MergeValue merge_value,
                      MergeCombiners merge_combiners,
                      uint32_t partitions = 0) const {
    static_assert(is_pair<T>::value, "combine_by_key needs a stream of pairs");
    using value = typename T::second_type;
    using combiner = std::decay_t<std::invoke_result_t<Create&, value&&>>;
    return combine_by_key_impl<combiner>("combine_by_key", partitions, true,
                                         std::move(create),
                                         std::move(merge_value),
                                         std::move(merge_combiners));
  }

  // -- persistence ---------------------------------------------------------------

  /// Computes each batch of this stream once and keeps it in the
  /// BlockManagers while a window, a successor's state or `remember` needs
  /// it (windows persist their parent implicitly). The level is
  /// MEMORY_ONLY_SER (Spark Streaming's default) unless persist(level) set
  /// another.
  dstream<T> persist() const {
    node_->persist();
    return *this;
  }

  /// persist() at a storage level (see runtime/storage_level.hpp):
  /// - serialized levels (`_SER`) keep each partition encoded;
  ///   deserialized ones (MEMORY_ONLY, MEMORY_AND_DISK and their `_2`
  ///   forms) keep the decoded records on the node that computed them, so
  ///   later tasks there (windows, state, outputs of the same batch) skip
  ///   decoding; the records are encoded only for a remote reader, the
  ///   replica and a spill;
  /// - disk levels (`MEMORY_AND_DISK*`) may be spilled to the node's local
  ///   directory when its BlockManager is over `sluice.block-manager.memory`
  ///   (least recently used first); memory-only levels are never spilled;
  /// - `_2` keeps a second copy on another node, read when the first is
  ///   lost (or its spill file is damaged).
  /// Replication other than 1 or 2 throws std::invalid_argument. The last
  /// call before start() decides.
  dstream<T> persist(storage_level level) const {
    if (level.replication < 1 || level.replication > 2)
      throw std::invalid_argument(std::string{"persist: "} + level.name
                                  + ": replication must be 1 or 2, not "
                                  + std::to_string(level.replication));
    node_->persist();
    node_->set_level(level);
    return *this;
  }

  dstream<T> cache() const {
    return persist();
  }

  /// Sets how often this stateful stream's state is written to a data
  /// checkpoint (Spark's DStream.checkpoint(interval)); a multiple of its
  /// slide, else std::invalid_argument naming the values. Without it: the
  /// smallest multiple of the slide that is at least 10 s.
  dstream<T> checkpoint(std::chrono::milliseconds interval) const {
    auto slide = node_->slide();
    if (interval.count() <= 0 || (slide > 0 && interval.count() % slide != 0))
      throw std::invalid_argument(
        "checkpoint(" + std::to_string(interval.count()) + " ms) on "
        + node_->id() + ": the interval must be a positive multiple of the "
        + "stream's slide (" + std::to_string(slide) + " ms)");
    node_->set_checkpoint_interval(interval.count());
    return *this;
  }

  // -- windows ------------------------------------------------------------------

  /// At every `slide`, the records of the batches in (t - length, t].
  /// Length and slide are multiples of the batch interval and of this
  /// stream's slide, and the slide divides the length; anything else throws
  /// std::invalid_argument naming the operator and the values.
  dstream<T> window(std::chrono::milliseconds length,
                    std::chrono::milliseconds slide) const {
    check_window("window", length.count(), slide.count());
    return make<T, window_node<T>>(node_, length.count(), slide.count());
  }

  /// window(length, slide).count(): one count per window.
  dstream<int64_t> count_by_window(std::chrono::milliseconds length,
                                   std::chrono::milliseconds slide) const {
    check_window("count_by_window", length.count(), slide.count());
    return map([](T&&) { return int64_t{1}; })
      .reduce_by_window([](int64_t a, int64_t b) { return a + b; }, length, slide)
      .map_partitions([](std::vector<int64_t>&& xs) {
        // An empty window still counts: 0, as count() does.
        return std::vector<int64_t>{xs.empty() ? 0 : xs.front()};
      });
  }

  /// f folded over every record of each window (no record for an empty
  /// window). Each batch is reduced first, so a window folds one value per
  /// batch (Spark's reduceByWindow without an inverse).
  template <class F>
  dstream<T> reduce_by_window(F f, std::chrono::milliseconds length,
                              std::chrono::milliseconds slide) const {
    check_window("reduce_by_window", length.count(), slide.count());
    return reduce(f).window(length, slide).reduce(f);
  }

  /// (value, count) of each window.
  dstream<std::pair<T, int64_t>>
  count_by_value_and_window(std::chrono::milliseconds length,
                            std::chrono::milliseconds slide,
                            uint32_t partitions = 0) const {
    check_window("count_by_value_and_window", length.count(), slide.count());
    return map([](T x) { return std::pair<T, int64_t>{std::move(x), 1}; })
      .reduce_by_key_and_window([](int64_t a, int64_t b) { return a + b; },
                                length, slide, partitions);
  }

  /// For streams of pairs: all values of each key over each window.
  auto group_by_key_and_window(std::chrono::milliseconds length,
                               std::chrono::milliseconds slide,
                               uint32_t partitions = 0) const {
    check_window("group_by_key_and_window", length.count(), slide.count());
    return window(length, slide).group_by_key(partitions);
  }

  /// For streams of pairs: f over the values of each key in each window,
  /// recomputed from the window's batches (each batch reduced by key first).
  template <class F>
  dstream<T> reduce_by_key_and_window(F f, std::chrono::milliseconds length,
                                      std::chrono::milliseconds slide,
                                      uint32_t partitions = 0) const {
    check_window("reduce_by_key_and_window", length.count(), slide.count());
    return reduce_by_key(f, partitions)
      .window(length, slide)
      .reduce_by_key(f, partitions);
  }

  /// The incremental form: each window is the previous one plus the
  /// batches entering (f) minus the batches leaving (`inv`, the inverse of
  /// f). Keys whose value returns to the neutral value stay unless `filter`
  /// (pair -> bool, false drops) is given. Needs a checkpoint directory.
  template <class F, class Inv>
  dstream<T> reduce_by_key_and_window(
    F f, Inv inv, std::chrono::milliseconds length,
    std::chrono::milliseconds slide, uint32_t partitions = 0,
    std::function<bool(const T&)> filter = nullptr) const {
    static_assert(is_pair<T>::value,
                  "reduce_by_key_and_window needs a stream of pairs");
    check_window("reduce_by_key_and_window", length.count(), slide.count());
    using key = typename T::first_type;
    using value = typename T::second_type;
    auto per_batch = reduce_by_key(f, partitions);
    return per_batch.template make<T, inverse_window_node<key, value, F, Inv>>(
      per_batch.node(), length.count(), slide.count(), f, std::move(inv),
      std::move(filter));
  }

  // -- state --------------------------------------------------------------------

  /// For streams of pairs: per-key state carried from batch to batch.
  /// `f(const std::vector<V>& new_values, std::optional<S> state)` returns
  /// the key's new state, or nullopt to remove the key; it is called for
  /// every key with new values or a state. Needs a checkpoint directory.
  template <class S, class F>
  auto update_state_by_key(F f, uint32_t partitions = 0) const {
    static_assert(is_pair<T>::value, "update_state_by_key needs a stream of pairs");
    using key = typename T::first_type;
    using value = typename T::second_type;
    if (partitions == 0)
      partitions = default_parallelism_of(*ctx_);
    check_partitions("update_state_by_key", partitions);
    auto result = make<std::pair<key, S>, state_node<key, value, S, F>>(
      node_, partitions, std::move(f));
    // Keep a batch's state until the next batch's exists.
    result.node()->retain_for(result.node()->slide());
    return result;
  }

  /// For streams of pairs: `f(const K& key, std::optional<V> value,
  /// key_state<S>& state) -> R` for every record (and once, with no value
  /// and state.is_timing_out(), for a key idle longer than spec.timeout,
  /// which is then removed). Returns the mapped records and the state
  /// snapshots. Needs a checkpoint directory.
  template <class S, class F, class P = T>
  auto map_with_state(F f, state_spec<typename P::first_type, S> spec = {}) const {
    static_assert(is_pair<T>::value, "map_with_state needs a stream of pairs");
    using key = typename T::first_type;
    using value = typename T::second_type;
    using out = std::decay_t<std::invoke_result_t<F&, const key&,
                                                  std::optional<value>,
                                                  key_state<S>&>>;
    using record = state_record<key, S, out>;
    auto partitions = spec.partitions != 0 ? spec.partitions
                                           : default_parallelism_of(*ctx_);
    check_partitions("map_with_state", partitions);
    if (spec.timeout.count() < 0)
      throw std::invalid_argument("map_with_state: the timeout must not be negative");
    auto records = make<record, map_with_state_node<key, value, S, out, F>>(
      node_, partitions, std::move(f), spec.timeout.count(), std::move(spec.initial));
    records.node()->retain_for(records.node()->slide());
    auto mapped = records.template flat_map<out>([](record&& r, auto& emit) {
      if (std::get<0>(r) == 0 && std::get<3>(r))
        emit(std::move(*std::get<3>(r)));
    });
    auto snapshots = records.template flat_map<std::pair<key, S>>(
      [](record&& r, auto& emit) {
        if (std::get<0>(r) == 1 && std::get<2>(r))
          emit(std::pair<key, S>{std::move(std::get<1>(r)), std::move(*std::get<2>(r))});
      });
    return map_with_state_streams<key, S, out>{mapped, snapshots};
  }

  // -- joins (streams of pairs with the same key type) ---------------------------

  /// For every key of either stream: all of this stream's values and all of
  /// `other`'s, both shuffled into the same `partitions` buckets.
  template <class U>
  auto cogroup(const dstream<U>& other, uint32_t partitions = 0) const {
    using key = key_of<U>;
    using value = typename T::second_type;
    using other_value = typename U::second_type;
    using out = std::pair<key, std::pair<std::vector<value>, std::vector<other_value>>>;
    if (partitions == 0)
      partitions = default_parallelism_of(*ctx_);
    check_partitions("cogroup", partitions);
    return make<out, cogroup_node<key, value, other_value>>(node_, other.node(),
                                                            partitions);
  }

  /// (k, (v, w)) for every pair of values of a key present in both streams.
  template <class U>
  auto join(const dstream<U>& other, uint32_t partitions = 0) const {
    using out = std::pair<key_of<U>, std::pair<typename T::second_type,
                                               typename U::second_type>>;
    return cogroup(other, partitions).template flat_map<out>([](auto&& g, auto& emit) {
      for (auto& v : g.second.first)
        for (auto& w : g.second.second)
          emit(out{g.first, {v, w}});
    });
  }

  /// Like join, plus (k, (v, nullopt)) for keys only this stream has.
  template <class U>
  auto left_outer_join(const dstream<U>& other, uint32_t partitions = 0) const {
    using w_opt = std::optional<typename U::second_type>;
    using out = std::pair<key_of<U>, std::pair<typename T::second_type, w_opt>>;
    return cogroup(other, partitions).template flat_map<out>([](auto&& g, auto& emit) {
      for (auto& v : g.second.first) {
        if (g.second.second.empty())
          emit(out{g.first, {v, std::nullopt}});
        for (auto& w : g.second.second)
          emit(out{g.first, {v, w_opt{w}}});
      }
    });
  }

  /// Like join, plus (k, (nullopt, w)) for keys only `other` has.
  template <class U>
  auto right_outer_join(const dstream<U>& other, uint32_t partitions = 0) const {
    using v_opt = std::optional<typename T::second_type>;
    using out = std::pair<key_of<U>, std::pair<v_opt, typename U::second_type>>;
    return cogroup(other, partitions).template flat_map<out>([](auto&& g, auto& emit) {
      for (auto& w : g.second.second) {
        if (g.second.first.empty())
          emit(out{g.first, {std::nullopt, w}});
        for (auto& v : g.second.first)
          emit(out{g.first, {v_opt{v}, w}});
      }
    });
  }

  /// Every key of either stream: matched pairs, and a nullopt for the side
  /// that lacks the key.
  template <class U>
  auto full_outer_join(const dstream<U>& other, uint32_t partitions = 0) const {
    using v_opt = std::optional<typename T::second_type>;
    using w_opt = std::optional<typename U::second_type>;
    using out = std::pair<key_of<U>, std::pair<v_opt, w_opt>>;
    return cogroup(other, partitions).template flat_map<out>([](auto&& g, auto& emit) {
      auto& vs = g.second.first;
      auto& ws = g.second.second;
      if (vs.empty()) {
        for (auto& w : ws)
          emit(out{g.first, {std::nullopt, w_opt{w}}});
        return;
      }
      for (auto& v : vs) {
        if (ws.empty())
          emit(out{g.first, {v_opt{v}, std::nullopt}});
        for (auto& w : ws)
          emit(out{g.first, {v_opt{v}, w_opt{w}}});
      }
    });
  }

  // -- output operations --------------------------------------------------------

  /// Prints the first n records of every batch on the driver.
  output_ref print(size_t n = 10) const {
    return add_output(std::make_unique<print_node<T>>(node_, n));
  }

  /// f(time_ms batch_time, std::vector<std::vector<T>>& partitions) on the
  /// driver after every batch.
  template <class F>
  output_ref foreach_batch(F f) const {
    return add_output(
      std::make_unique<foreach_batch_node<T, F>>(node_, std::move(f)));
  }

  /// f(const output_partition& id, std::vector<T>& records) on a worker, for
  /// every partition of every batch.
  template <class F>
  output_ref foreach_partition(F f) const {
    return add_output(std::make_unique<foreach_partition_node<T, F>>(
      "foreach_partition", node_, std::move(f)));
  }

  /// Spark's saveAsTextFiles: "<prefix>-<batch ms>[.<suffix>]/part-NNNNN",
  /// one line per record (see text_format.hpp), each file written atomically.
  output_ref save_as_text_files(std::string prefix, std::string suffix = "") const {
    return save_text([prefix, suffix](time_ms t) { return batch_dir(prefix, suffix, t); });
  }

  /// The same, laid out as "<dir>/<batch ms>/part-NNNNN".
  output_ref save_as_text_files_in(std::string dir) const {
    return save_text([dir](time_ms t) { return dir + "/" + std::to_string(t); });
  }

private:
  template <class>
  friend class dstream;

  /// The key type shared by this stream of pairs and `U`; joining streams
  /// of other types does not compile.
  template <class U>
  using key_of = typename common_key<T, U>::type;

  template <class Out, class Node, class... Ts>
  dstream<Out> make(Ts&&... xs) const {
    auto node = std::make_unique<Node>(std::forward<Ts>(xs)...);
    return dstream<Out>{ctx_, graph_of(*ctx_).add(std::move(node))};
  }

  output_ref add_output(std::unique_ptr<node_base> x) const {
    return output_ref{ctx_, graph_of(*ctx_).add(std::move(x))};
  }

  template <class PathFn>
  output_ref save_text(PathFn path_of) const {
    auto write = [path_of](const output_partition& id, std::vector<T>& xs) {
      std::string content;
      for (auto& x : xs) {
        append_text(content, x);
        content += '\n';
      }
      write_part_file(path_of(id.batch_time), id.partition, content);
    };
    return add_output(std::make_unique<foreach_partition_node<T, decltype(write)>>(
      "save_as_text_files", node_, std::move(write)));
  }

  void check_window(const char* op, int64_t length, int64_t slide) const {
    auto bi = graph_of(*ctx_).batch_interval();
    auto ps = node_->slide();
    auto ms = [](int64_t x) { return std::to_string(x) + " ms"; };
    auto fail = [&](const std::string& why) {
      throw std::invalid_argument(std::string{op} + ": " + why);
    };
    if (length <= 0 || slide <= 0)
      fail("window length " + ms(length) + " and slide " + ms(slide)
           + " must be positive");
    if (length % bi != 0)
      fail("window length " + ms(length)
           + " is not a multiple of the batch interval " + ms(bi));
    if (slide % bi != 0)
      fail("slide " + ms(slide) + " is not a multiple of the batch interval "
           + ms(bi));
    if (length % slide != 0)
      fail("slide " + ms(slide) + " does not divide the window length "
           + ms(length));
    if (length % ps != 0 || slide % ps != 0)
      fail("window length " + ms(length) + " and slide " + ms(slide)
           + " must be multiples of the parent stream's slide " + ms(ps));
  }

  static void check_partitions(const char* op, uint32_t n) {
    if (n == 0 || n > 100000)
      throw std::invalid_argument(std::string{op} + ": partition count "
                                  + std::to_string(n)
                                  + " must be between 1 and 100000");
  }

  template <class C, class Create, class MergeValue, class MergeCombiners>
  auto combine_by_key_impl(const char* op, uint32_t partitions,
                           bool map_side_combine, Create create,
                           MergeValue merge_value,
                           MergeCombiners merge_combiners) const {
    using key = typename T::first_type;
    using value = typename T::second_type;
    if (partitions == 0)
      partitions = default_parallelism_of(*ctx_);
    check_partitions(op, partitions);
    using node_type = combine_by_key_node<key, value, C, Create, MergeValue,
                                          MergeCombiners>;
    return make<std::pair<key, C>, node_type>(op, node_, partitions,
                                              map_side_combine, std::move(create),
                                              std::move(merge_value),
                                              std::move(merge_combiners));
  }

  streaming_context* ctx_;
  typed_node<T>* node_;
};

} // namespace sluice
