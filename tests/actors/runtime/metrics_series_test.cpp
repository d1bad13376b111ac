// counter_series: the per-thread memory of labelled counter series that the
// per-event metrics go through instead of Family::Add.

#include "actors/runtime/metrics.hpp"

#include <catch2/catch.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <string>
#include <string_view>
#include <thread>

using namespace ferry;

namespace {

/// Families live as long as the process, as the node's own do: a thread
/// remembers series by their family's address.
prometheus::Registry& test_registry() {
  static prometheus::Registry registry;
  return registry;
}

} // namespace

TEST_CASE("counter_series is the family's series for those labels, on every thread",
          "[metrics]") {
  auto& family = prometheus::BuildCounter()
                   .Name("test_series_total")
                   .Help("h")
                   .Register(test_registry());
  auto& direct = family.Add({{"server", "a"}, {"result", "accepted"}});
  auto& cached = metrics::counter_series(family, {{"server", "a"}, {"result", "accepted"}});
  CHECK(&cached == &direct);
  // Asked again (now from the thread's memory): the same series.
  CHECK(&metrics::counter_series(family, {{"server", "a"}, {"result", "accepted"}})
        == &direct);
  prometheus::Counter* on_other_thread = nullptr;
  std::thread other{[&] {
    on_other_thread
      = &metrics::counter_series(family, {{"server", "a"}, {"result", "accepted"}});
  }};
  other.join();
  CHECK(on_other_thread == &direct);
  cached.Increment(3);
  CHECK(direct.Value() == 3);
}

TEST_CASE("counter_series keeps label sets and families apart", "[metrics]") {
  auto& one
    = prometheus::BuildCounter().Name("test_one_total").Help("h").Register(test_registry());
  auto& two
    = prometheus::BuildCounter().Name("test_two_total").Help("h").Register(test_registry());
  auto& a = metrics::counter_series(one, {{"server", "a"}, {"result", "accepted"}});
  auto& other_value
    = metrics::counter_series(one, {{"server", "a"}, {"result", "rejected"}});
  auto& other_family = metrics::counter_series(two, {{"server", "a"}, {"result", "accepted"}});
  // Label values that would read alike if names and values were only
  // joined with a separator.
  std::string joined{"a\0result\0accepted", 17};
  auto& one_label = metrics::counter_series(one, {{"server", joined}});
  auto& shifted = metrics::counter_series(
    one, {{"server", std::string_view{"a\0", 2}}, {"result", "accepted"}});
  CHECK(&a != &other_value);
  CHECK(&a != &other_family);
  CHECK(&a != &one_label);
  CHECK(&a != &shifted);
  CHECK(&one_label == &one.Add({{"server", joined}}));
  a.Increment();
  CHECK(a.Value() == 1);
  CHECK(other_value.Value() == 0);
  CHECK(other_family.Value() == 0);
}
