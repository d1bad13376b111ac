#include "messages/cluster/version_vector.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <map>
#include <string>
#include <vector>

using namespace ferry::cluster;

namespace {

// Every property below is checked on every vector over three members with
// counters 0..2: 27 vectors, 729 pairs, 19683 triples.
const std::array<std::string, 3> names = {"alpha", "bravo", "charlie"};

using counts = std::array<uint64_t, 3>;

version_vector make(const counts& xs) {
  version_vector result;
  for (size_t i = 0; i < xs.size(); ++i)
    for (uint64_t n = 0; n < xs[i]; ++n)
      result.increment(names[i]);
  return result;
}

std::vector<counts> all_counts() {
  std::vector<counts> result;
  for (uint64_t a = 0; a <= 2; ++a)
    for (uint64_t b = 0; b <= 2; ++b)
      for (uint64_t c = 0; c <= 2; ++c)
        result.push_back({a, b, c});
  return result;
}

std::vector<version_vector> all_vectors() {
  std::vector<version_vector> result;
  for (const auto& xs : all_counts())
    result.push_back(make(xs));
  return result;
}

/// The definition, on plain arrays.
causal_order oracle(const counts& a, const counts& b) {
  bool a_ahead = false;
  bool b_ahead = false;
  for (size_t i = 0; i < a.size(); ++i) {
    a_ahead = a_ahead || a[i] > b[i];
    b_ahead = b_ahead || b[i] > a[i];
  }
  if (a_ahead && b_ahead)
    return causal_order::concurrent;
  if (a_ahead)
    return causal_order::after;
  if (b_ahead)
    return causal_order::before;
  return causal_order::equal;
}

bool at_most(const version_vector& a, const version_vector& b) {
  auto order = compare(a, b);
  return order == causal_order::before || order == causal_order::equal;
}

causal_order mirror(causal_order x) {
  if (x == causal_order::before)
    return causal_order::after;
  if (x == causal_order::after)
    return causal_order::before;
  return x;
}

/// Two contents per vector: 54 record versions.
std::vector<record_version> all_versions() {
  std::vector<record_version> result;
  for (const auto& clock : all_vectors())
    for (uint8_t fill : {0x11, 0xee}) {
      record_version x;
      x.clock = clock;
      x.digest.fill(fill);
      result.push_back(std::move(x));
    }
  return result;
}

version_vector folded(version_vector x, const std::string& member) {
  x.fold(member);
  return x;
}

record_version folded(record_version x, const std::string& member) {
  x.clock.fold(member);
  return x;
}

template <class T>
T round_trip(const T& x) {
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  auto copy = x;
  REQUIRE(!sink(copy));
  T result;
  caf::binary_deserializer source{nullptr, buf};
  REQUIRE(!source(result));
  return result;
}

} // namespace

TEST_CASE("compare follows the component-wise definition",
          "[version_vector]") {
  auto xs = all_counts();
  for (const auto& a : xs)
    for (const auto& b : xs) {
      CAPTURE(a, b);
      CHECK(compare(make(a), make(b)) == oracle(a, b));
    }
}

TEST_CASE("compare is antisymmetric and equal means the same vector",
          "[version_vector]") {
  auto vs = all_vectors();
  for (const auto& a : vs)
    for (const auto& b : vs) {
      auto order = compare(a, b);
      CHECK(compare(b, a) == mirror(order));
      CHECK((order == causal_order::equal) == (a == b));
    }
}

TEST_CASE("happened-before is a strict partial order", "[version_vector]") {
  auto vs = all_vectors();
  for (const auto& a : vs) {
    CHECK(compare(a, a) == causal_order::equal);
    for (const auto& b : vs) {
      if (compare(a, b) != causal_order::before)
        continue;
      for (const auto& c : vs)
        if (compare(b, c) == causal_order::before)
          CHECK(compare(a, c) == causal_order::before);
    }
  }
}

TEST_CASE("merge is the least upper bound", "[version_vector]") {
  auto vs = all_vectors();
  for (const auto& a : vs) {
    CHECK(merge(a, a) == a);
    for (const auto& b : vs) {
      auto m = merge(a, b);
      CHECK(merge(b, a) == m);
      CHECK(at_most(a, m));
      CHECK(at_most(b, m));
      for (const auto& c : vs) {
        CHECK(merge(merge(a, b), c) == merge(a, merge(b, c)));
        if (at_most(a, c) && at_most(b, c))
          CHECK(at_most(m, c));
      }
    }
  }
}

TEST_CASE("increment moves a vector strictly after itself",
          "[version_vector]") {
  for (const auto& a : all_vectors())
    for (const auto& member : names) {
      auto b = a;
      b.increment(member);
      CHECK(compare(a, b) == causal_order::before);
      CHECK(b.get(member) == a.get(member) + 1);
      CHECK(b.total() == a.total() + 1);
    }
}

TEST_CASE("the conflict rule is a strict total order that respects causality",
          "[version_vector]") {
  auto xs = all_versions();
  for (const auto& x : xs)
    for (const auto& y : xs) {
      // Exactly one of: x beats y, y beats x, x is y.
      CHECK(int{beats(x, y)} + int{beats(y, x)} + int{x == y} == 1);
      if (compare(x.clock, y.clock) == causal_order::after)
        CHECK(beats(x, y));
    }
  for (const auto& x : xs)
    for (const auto& y : xs) {
      if (!beats(x, y))
        continue;
      for (const auto& z : xs)
        if (beats(y, z))
          CHECK(beats(x, z));
    }
}

TEST_CASE("resolve stores the same record whatever the order of arrival",
          "[version_vector]") {
  auto xs = all_versions();
  for (const auto& x : xs)
    for (const auto& y : xs) {
      auto one = resolve(x, y);
      auto other = resolve(y, x);
      CHECK(one.result == other.result);
      CHECK(one.conflict == other.conflict);
      auto order = compare(y.clock, x.clock);
      CHECK(one.order == order);
      bool concurrent = order == causal_order::concurrent
                        || (order == causal_order::equal
                            && x.digest != y.digest);
      CHECK(one.conflict == concurrent);
      if (order == causal_order::after)
        CHECK(one.result == y);
      if (order == causal_order::before || x == y)
        CHECK(one.result == x);
      if (concurrent) {
        // The merged history, with the winner's content: it dominates both.
        CHECK(one.result.clock == merge(x.clock, y.clock));
        CHECK(one.result.digest == (beats(x, y) ? x.digest : y.digest));
        CHECK(at_most(x.clock, one.result.clock));
        CHECK(at_most(y.clock, one.result.clock));
        // A node that already resolved keeps its record when either
        // original arrives again; a concurrent original is simply stale.
        CHECK(resolve(one.result, x).result == one.result);
        CHECK(resolve(one.result, y).result == one.result);
        if (order == causal_order::concurrent) {
          CHECK(resolve(one.result, x).order == causal_order::before);
          CHECK(resolve(one.result, y).order == causal_order::before);
        }
      }
    }
}

TEST_CASE("folding a settled member changes no comparison",
          "[version_vector]") {
  auto vs = all_vectors();
  for (const auto& a : vs)
    for (const auto& b : vs)
      for (const auto& member : names) {
        auto fa = folded(a, member);
        auto fb = folded(b, member);
        CHECK(fa.total() == a.total());
        CHECK(fa.get(member) == 0);
        CHECK(folded(fa, member) == fa);
        // Settled: both carry its final counter.
        if (a.get(member) == b.get(member))
          CHECK(compare(fa, fb) == compare(a, b));
      }
}

TEST_CASE("folding never changes which content resolve keeps",
          "[version_vector]") {
  // Even with the folding rule broken (versions that disagree on the folded
  // member, or a node that folded while another did not), every node keeps
  // the same content.
  auto xs = all_versions();
  for (const auto& x : xs)
    for (const auto& y : xs)
      for (const auto& member : names) {
        auto expected = resolve(x, y).result.digest;
        CHECK(resolve(folded(x, member), folded(y, member)).result.digest
              == expected);
        CHECK(resolve(folded(x, member), y).result.digest == expected);
        CHECK(resolve(x, folded(y, member)).result.digest == expected);
      }
}

TEST_CASE("align leaves vectors folded alike as they are",
          "[version_vector]") {
  auto vs = all_vectors();
  for (const auto& a : vs)
    for (const auto& b : vs) {
      auto [x, y] = align(a, b);
      CHECK(x == a);
      CHECK(y == b);
      if (a.get("alpha") != b.get("alpha"))
        continue;
      auto [fx, fy] = align(folded(a, "alpha"), folded(b, "alpha"));
      CHECK(fx == folded(a, "alpha"));
      CHECK(fy == folded(b, "alpha"));
    }
}

TEST_CASE("a vector folded on one node compares with an unfolded one as if "
          "both were folded",
          "[version_vector]") {
  // A node that forgot `member` meets the version of a node that has not
  // (yet): before, after and concurrent come out as with both folded, which
  // for a settled member is the comparison of the originals, and whichever
  // side of the pair the folded vector is on.
  auto vs = all_vectors();
  for (const auto& a : vs)
    for (const auto& b : vs)
      for (const auto& member : names) {
        if (a.get(member) != b.get(member))
          continue;
        auto want = compare(a, b);
        REQUIRE(want == compare(folded(a, member), folded(b, member)));
        auto [x, y] = align(folded(a, member), b);
        CHECK(compare(x, y) == want);
        auto [u, v] = align(b, folded(a, member));
        CHECK(compare(v, u) == want);
        CHECK(u == y);
        CHECK(v == x);
      }
}

TEST_CASE("align on small vectors: happened-before, concurrent and after "
          "across a fold",
          "[version_vector]") {
  // node-x edited twice and was forgotten: its 2 edits are retired here.
  version_vector folded_here;
  folded_here.set("node-y", 1);
  folded_here.set_retired(2);
  SECTION("the same history, unfolded elsewhere: equal") {
    version_vector there;
    there.set("node-x", 2);
    there.set("node-y", 1);
    auto [x, y] = align(folded_here, there);
    CHECK(compare(x, y) == causal_order::equal);
    CHECK(y == folded_here);
  }
  SECTION("a later edit by a new member elsewhere: happened-before") {
    version_vector there;
    there.set("node-x", 2);
    there.set("node-y", 1);
    there.set("node-z", 1);
    auto [x, y] = align(folded_here, there);
    CHECK(compare(x, y) == causal_order::before);
    CHECK(y.retired() == 2);
    CHECK(y.get("node-x") == 0);
    CHECK(y.get("node-z") == 1);
  }
  SECTION("elsewhere missed node-y's edit: happened-after") {
    version_vector there;
    there.set("node-x", 2);
    auto [x, y] = align(folded_here, there);
    CHECK(compare(x, y) == causal_order::after);
  }
  SECTION("an edit elsewhere that did not see node-y's: concurrent") {
    version_vector there;
    there.set("node-x", 2);
    there.set("node-z", 1);
    auto [x, y] = align(folded_here, there);
    CHECK(compare(x, y) == causal_order::concurrent);
  }
  SECTION("elsewhere missed one of node-x's edits: no fold, concurrent") {
    version_vector there;
    there.set("node-x", 1);
    there.set("node-y", 1);
    auto [x, y] = align(folded_here, there);
    CHECK(y == there);
    CHECK(compare(x, y) == causal_order::concurrent);
  }
}

TEST_CASE("resolve settles a folded and an unfolded version of one history "
          "without a conflict",
          "[version_vector]") {
  auto xs = all_versions();
  for (const auto& x : xs)
    for (const auto& y : xs)
      for (const auto& member : names) {
        if (x.clock.get(member) != y.clock.get(member))
          continue;
        auto plain = resolve(x, y);
        auto one = resolve(folded(x, member), y);
        auto other = resolve(y, folded(x, member));
        CHECK(one.order == plain.order);
        CHECK(one.conflict == plain.conflict);
        CHECK(one.result.digest == plain.result.digest);
        CHECK(one.result == other.result);
      }
}

TEST_CASE("folding two members adds both to retired", "[version_vector]") {
  auto x = make({2, 1, 2});
  x.fold("alpha");
  x.fold("charlie");
  x.fold("nobody");
  CHECK(x.retired() == 4);
  CHECK(x.total() == 5);
  CHECK(x.counters().size() == 1);
  CHECK(x.get("bravo") == 1);
  // `retired` is one more component.
  auto y = make({0, 1, 0});
  CHECK(compare(x, y) == causal_order::after);
  CHECK(merge(x, y) == x);
}

TEST_CASE("version vectors and record versions travel through CAF",
          "[version_vector]") {
  auto x = make({2, 0, 1});
  x.fold("charlie");
  CHECK(round_trip(x) == x);
  record_version r;
  r.clock = x;
  r.digest.fill(0x5a);
  r.digest[31] = 0x01;
  CHECK(round_trip(r) == r);
}

TEST_CASE("explicit zero counters from a peer are dropped on load",
          "[version_vector]") {
  // The wire form of a version_vector: the counter map, then `retired`.
  std::map<std::string, uint64_t> counters{{"alpha", 0}, {"bravo", 2}};
  uint64_t retired = 3;
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  REQUIRE(!sink(counters, retired));
  version_vector loaded;
  caf::binary_deserializer source{nullptr, buf};
  REQUIRE(!source(loaded));
  auto expected = folded(make({0, 2, 3}), "charlie");
  CHECK(loaded == expected);
  CHECK(loaded.counters().size() == 1);
  CHECK(loaded.get("bravo") == 2);
  CHECK(loaded.retired() == 3);
}
