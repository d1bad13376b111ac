#include "actors/sync/neg_catchup.hpp"

#include "messages/nostr/hex.hpp"
#include "tests/store/store_fixture.hpp"

#include <boost/json.hpp>

#include <map>
#include <set>

using namespace ferry;
using namespace ferry::store;
using namespace ferry::store::test;
namespace neg = ferry::nostr::negentropy;

namespace {

using id_set = std::set<nostr::bytes32>;

/// A remote relay's NIP-77 side over a list of events, answering with the
/// engine's server; it refuses sessions over `max_items` with `blocked:`.
struct remote {
  std::vector<nostr::event> events;
  size_t max_items = SIZE_MAX;
  std::map<std::string, std::unique_ptr<neg::server>> sessions;
  size_t opened = 0;

  /// Answers one frame; returns what the connection would get back.
  std::optional<std::pair<std::string, std::string>> answer(const std::string& frame) {
    auto msg = boost::json::parse(frame).as_array();
    std::string verb{msg[0].as_string()};
    std::string sub{msg[1].as_string()};
    std::string query_hex;
    if (verb == "NEG-OPEN") {
      ++opened;
      nostr::filter f;
      REQUIRE(nostr::parse_filter(boost::json::serialize(msg[2]), f).empty());
      std::vector<neg::item> items;
      for (auto& ev : events)
        if (f.matches(ev))
          items.push_back({static_cast<uint64_t>(ev.created_at), ev.id});
      if (items.size() > max_items)
        return std::pair{std::string{"NEG-ERR"}, std::string{"blocked: too many"}};
      sessions[sub] = std::make_unique<neg::server>(
        std::make_shared<const neg::item_set>(std::move(items)), 4096);
      query_hex = std::string{msg[3].as_string()};
    } else if (verb == "NEG-MSG") {
      query_hex = std::string{msg[2].as_string()};
    } else {
      sessions.erase(sub);
      return std::nullopt;
    }
    std::string query, response;
    REQUIRE(neg::decode_hex(query_hex, query));
    REQUIRE(sessions.at(sub)->reconcile(query, response).empty());
    return std::pair{std::string{"NEG-MSG"}, neg::encode_hex(response)};
  }
};

struct outcome {
  /// Local sets the caller read.
  size_t scans = 0;
  neg_catchup::action::kind end;
  id_set need;
  id_set have;
  std::string reason;
};

/// Runs a whole catch-up against `r`, reading the local sets from `local`
/// when `c` hands the reads to its caller.
outcome run(neg_catchup& c, remote& r, const store::event_store& local) {
  outcome out;
  auto act = c.start();
  for (int steps = 0; steps < 100000; ++steps) {
    if (act.what == neg_catchup::action::kind::scan) {
      ++out.scans;
      for (auto& frame : act.frames)
        r.answer(frame);
      act = c.on_items(local.negentropy_items(act.scan.filter, act.scan.now,
                                              act.scan.max_items));
      continue;
    }
    for (auto& id : c.take_need())
      REQUIRE(out.need.insert(id).second);
    for (auto& id : c.take_have())
      REQUIRE(out.have.insert(id).second);
    if (act.what != neg_catchup::action::kind::send) {
      for (auto& frame : act.frames)
        r.answer(frame);
      out.end = act.what;
      out.reason = act.reason;
      return out;
    }
    neg_catchup::action next;
    for (auto& frame : act.frames) {
      auto reply = r.answer(frame);
      if (!reply)
        continue;
      next = reply->first == "NEG-MSG" ? c.on_message(c.session(), reply->second)
                                        : c.on_error(c.session(), reply->second);
    }
    act = std::move(next);
  }
  FAIL("the catch-up did not end");
  return out;
}

struct fixture : store_fixture {
  nostr::keypair keys = nostr::generate_keypair();

  /// `n` kind-1 events, one per second from `first`.
  std::vector<incoming_event> make(size_t n, int64_t first) {
    std::vector<incoming_event> out;
    for (size_t i = 0; i < n; ++i)
      out.push_back(make_event(keys, 1, first + static_cast<int64_t>(i), {},
                               std::to_string(first) + "/" + std::to_string(i)));
    return out;
  }

  void store_all(const std::vector<incoming_event>& evs) {
    for (auto& ev : evs)
      write(ev);
  }
};

id_set ids_of(const std::vector<incoming_event>& evs) {
  id_set ids;
  for (auto& ev : evs)
    ids.insert(ev.ev.id);
  return ids;
}

void add_to(remote& r, const std::vector<incoming_event>& evs) {
  for (auto& ev : evs)
    r.events.push_back(ev.ev);
}

} // namespace

TEST_CASE_METHOD(fixture, "negentropy catch-up finds exactly what each side "
                          "lacks",
                 "[neg_catchup]") {
  auto shared = make(400, 1000);
  auto mine = make(150, 2000);
  auto theirs = make(250, 3000);
  store_all(shared);
  store_all(mine);
  remote r;
  add_to(r, shared);
  add_to(r, theirs);
  neg_catchup::limits lim;
  lim.frame_size_limit = 4096;
  // Read here, or by the caller (a connection reads off its thread).
  lim.scan_inline = GENERATE(true, false);
  // Runs `c` to the end: it needs exactly their events and has exactly mine.
  auto finds_the_difference = [&](neg_catchup& c) {
    auto out = run(c, r, *store);
    CHECK(out.end == neg_catchup::action::kind::done);
    CHECK(out.need == ids_of(theirs));
    CHECK(out.have == ids_of(mine));
    // Every session's set was read by the caller, or none was.
    CHECK(out.scans == (lim.scan_inline ? 0 : 1 + 2 * c.splits));
  };
  SECTION("one window") {
    neg_catchup c{*store, {kinds_filter({1})}, 0, default_now, lim};
    finds_the_difference(c);
    CHECK(c.splits == 0);
    CHECK(c.newest_local() == 2149);
  }
  SECTION("local windows over max_items are split") {
    lim.max_items = 60;
    neg_catchup c{*store, {kinds_filter({1})}, 0, default_now, lim};
    finds_the_difference(c);
    CHECK(c.splits > 0);
  }
  SECTION("windows the remote blocks are split") {
    r.max_items = 100;
    neg_catchup c{*store, {kinds_filter({1})}, 0, default_now, lim};
    finds_the_difference(c);
    CHECK(c.splits > 0);
    CHECK(r.opened == c.sessions);
  }
  SECTION("since limits the reconciliation") {
    neg_catchup c{*store, {kinds_filter({1})}, 2100, default_now, lim};
    auto out = run(c, r, *store);
    CHECK(out.end == neg_catchup::action::kind::done);
    CHECK(out.need == ids_of(theirs));
    CHECK(out.have.size() == 50);
  }
  SECTION("several filters are sessions of their own") {
    auto other = make_event(keys, 7, 5000);
    write(other);
    neg_catchup c{*store, {kinds_filter({1}), kinds_filter({7})}, 0, default_now,
                  lim};
    auto out = run(c, r, *store);
    CHECK(out.end == neg_catchup::action::kind::done);
    CHECK(c.sessions == 2);
    CHECK(out.have.count(other.ev.id) == 1);
    CHECK(out.need == ids_of(theirs));
  }
}

TEST_CASE_METHOD(fixture, "a remote without negentropy means falling back",
                 "[neg_catchup]") {
  store_all(make(10, 1000));
  neg_catchup c{*store, {kinds_filter({1})}, 0, default_now, {}};
  auto first = c.start();
  REQUIRE(first.what == neg_catchup::action::kind::send);
  REQUIRE(first.frames.size() == 1);
  CHECK(first.frames[0].rfind("[\"NEG-OPEN\",\"ferry-neg-1\",{\"kinds\":[1]},\"61", 0)
        == 0);
  SECTION("NEG-ERR") {
    auto act = c.on_error(c.session(), "error: not here");
    CHECK(act.what == neg_catchup::action::kind::fallback);
    CHECK(act.reason == "NEG-OPEN refused: error: not here");
  }
  SECTION("a notice") {
    CHECK(c.on_notice("unknown message type").what
          == neg_catchup::action::kind::fallback);
  }
  SECTION("blocked, down to one second") {
    neg_catchup::action act = first;
    int opens = 0;
    while (act.what == neg_catchup::action::kind::send) {
      ++opens;
      act = c.on_error(c.session(), "blocked: too many");
    }
    CHECK(act.what == neg_catchup::action::kind::fallback);
    CHECK(opens > 10);
  }
  SECTION("auth-required: the same window again after AUTH, once") {
    auto act = c.on_error(c.session(), "auth-required: sign in");
    REQUIRE(act.what == neg_catchup::action::kind::authenticate);
    CHECK(act.reason == "auth-required: sign in");
    CHECK(act.frames.empty());
    CHECK(c.session().empty());
    auto again = c.resume();
    REQUIRE(again.what == neg_catchup::action::kind::send);
    REQUIRE(again.frames.size() == 1);
    // A new session over the same filter and local set.
    CHECK(again.frames[0].rfind("[\"NEG-OPEN\",\"ferry-neg-2\",{\"kinds\":[1]},", 0)
          == 0);
    CHECK(again.frames[0].substr(again.frames[0].rfind(','))
          == first.frames[0].substr(first.frames[0].rfind(',')));
    auto refused = c.on_error(c.session(), "auth-required: still not");
    CHECK(refused.what == neg_catchup::action::kind::fallback);
    CHECK(refused.reason == "NEG-OPEN refused: auth-required: still not");
  }
  SECTION("garbage") {
    CHECK(c.on_message(c.session(), "zz").what == neg_catchup::action::kind::fail);
  }
  SECTION("other sessions are ignored") {
    CHECK(c.on_message("someone-else", "61").what
          == neg_catchup::action::kind::none);
  }
}

TEST_CASE_METHOD(fixture, "a catch-up with nothing of its range held locally "
                          "pages instead of reconciling, when asked to",
                 "[neg_catchup]") {
  neg_catchup::limits lim;
  lim.page_when_empty = true;
  lim.scan_inline = GENERATE(true, false);
  CAPTURE(lim.scan_inline);
  remote r;
  add_to(r, make(50, 1000));
  // Held, but outside the kinds or the range asked for.
  store_all(make(20, 3000));
  write(make_event(keys, 7, 1500));
  SECTION("one filter whose range holds nothing here") {
    neg_catchup c{*store, {kinds_filter({30023})}, 0, default_now, lim};
    auto out = run(c, r, *store);
    CHECK(out.end == neg_catchup::action::kind::page);
    CHECK(c.sessions == 0);
    CHECK(r.opened == 0);
    CHECK(out.need.empty());
  }
  SECTION("since past everything held") {
    neg_catchup c{*store, {kinds_filter({1})}, 4000, default_now, lim};
    CHECK(run(c, r, *store).end == neg_catchup::action::kind::page);
  }
  SECTION("an event held in the range: reconciled") {
    neg_catchup c{*store, {kinds_filter({1})}, 0, default_now, lim};
    auto out = run(c, r, *store);
    CHECK(out.end == neg_catchup::action::kind::done);
    CHECK(c.sessions == 1);
    CHECK(out.need.size() == 50);
  }
  SECTION("several filters: reconciled, even where nothing is held") {
    neg_catchup c{*store, {kinds_filter({30023}), kinds_filter({30617})}, 0,
                  default_now, lim};
    auto out = run(c, r, *store);
    CHECK(out.end == neg_catchup::action::kind::done);
    CHECK(c.sessions == 2);
  }
  SECTION("not asked to: reconciled") {
    lim.page_when_empty = false;
    neg_catchup c{*store, {kinds_filter({30023})}, 0, default_now, lim};
    auto out = run(c, r, *store);
    CHECK(out.end == neg_catchup::action::kind::done);
    CHECK(c.sessions == 1);
  }
}
