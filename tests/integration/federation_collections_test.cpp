// Collections between two real `ferry node` processes on loopback: A offers
// "profiles" (kinds 0 and 30023) to B and keeps "notes" (kind 1) to itself.
// B lists and previews what A offers it (NIP-98 signed by B's node key) and
// pulls "profiles" into its own store over NIP-77, settling replaceable and
// addressable events by each conflict strategy.

#include "messages/nostr/event.hpp"
#include "messages/nostr/keys.hpp"
#include "tests/integration/federation_helpers.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <regex>
#include <set>
#include <string>
#include <vector>

using namespace ferry;
using namespace fed_test;
using namespace std::chrono_literals;
using sync_test::hex_id;
using sync_test::ids_of;

namespace {

const std::string collections_toml = R"(
[[federation.collection]]
name = "profiles"
filters = [{ kinds = [0, 30023] }]

[[federation.collection]]
name = "notes"
filters = [{ kinds = [1] }]
)";

const std::string profiles_filter = R"({"kinds":[0,30023],"limit":500})";

nostr::event make_versioned(const nostr::keypair& author, uint32_t kind,
                            int64_t created_at, const std::string& d = {}) {
  nostr::event ev;
  ev.kind = kind;
  ev.created_at = created_at;
  ev.content = "v" + std::to_string(created_at) + " " + d;
  if (!d.empty())
    ev.tags.push_back({"d", d});
  nostr::sign_event(ev, author);
  return ev;
}

/// A offers "profiles" to B (its peer, linked by A's registration, with
/// filters of a kind no test event has, so the live sync moves nothing
/// here), and both run.
struct linked_pair {
  fed_node a{"a"};
  fed_node b{"b"};

  /// `a_relay` goes into A's [relay] table; `a_events` are imported into A
  /// before it starts; `b_extra` goes at the end of B's config;
  /// `a_federation` into A's [federation] table.
  explicit linked_pair(const std::string& a_relay = {},
                       const std::vector<nostr::event>& a_events = {},
                       const std::string& b_extra = {},
                       const std::string& a_federation = {}) {
    a.relay_extra = a_relay;
    a.configure(fed_section("deny", "name = \"a\"\n" + a_federation)
                + "[[federation.peer]]\nname = \"b\"\nendpoint = \""
                + b.relay_url() + "\"\nadmin_url = \"" + b.admin_url()
                + "\"\nfilters = [{ kinds = [7777] }]\n"
                  "collections = [\"profiles\"]\n"
                + collections_toml);
    b.configure(fed_section("auto_accept", "name = \"b\"\n")
                + collections_toml + b_extra);
    if (!a_events.empty())
      sync_test::import_into(a.dir, a.config, a_events);
    b.start();
    a.start();
    // B holds A's registration once A's link shows the handshake.
    if (!test::poll_until([&] {
          auto peer = a.peer("b");
          return peer.is_object() && peer.at("pinned") == json::value(b.pubkey())
                 && peer.at("status") == "active" && b.peer_status("a") == "active";
        }))
      FAIL("A never linked with B\n" << both(a, b));
  }

  /// B's view of what A offers: A's admin API, signed by B's node key.
  net::http_result ask_a(const std::string& target) {
    return a.signed_call(b.keys, "GET", target);
  }

  /// A pull may take a reconciliation's time: up to the node's 60 s.
  net::http_result pull(const std::string& body) {
    return net::simple_http_request(
      "127.0.0.1", b.admin_port, "POST", "/api/v1/federation/peers/a/pull",
      {{"Authorization", std::string{"Bearer "} + sync_test::admin_token},
       {"Content-Type", "application/json"}},
      body, std::chrono::seconds{65});
  }
};

int64_t number(const json::value& v, const char* key) {
  return v.at(key).to_number<int64_t>();
}

/// What B's pull of A's "profiles" through neg_relay.mjs gave.
struct pulled {
  net::http_result res;
  std::set<std::string> held; // B's events matching `held_filter` afterwards
  std::string logs;
};

/// A's public_url names neg_relay.mjs (nostr-tools' NIP-77, started with
/// `flags`) holding `offered`: B pulls "profiles" from A through it.
pulled pull_via_neg_relay(const std::vector<nostr::event>& offered,
                          std::vector<std::string> flags,
                          const std::string& held_filter) {
  test::temp_dir dir;
  test::ferry_process relay{sync_test::neg_relay_args(dir, offered, std::move(flags)),
                            {}, "node"};
  auto port = relay.wait_for_port();
  INFO(relay.output());
  REQUIRE(port);
  linked_pair nodes{"public_url = \"" + sync_test::relay_url(*port) + "\"\n"};
  pulled out;
  out.res = nodes.pull(R"({"collection":"profiles"})");
  out.held = ids_of(nodes.b.relay_port, held_filter);
  out.logs = out.res.error + " " + out.res.response.body + "\n"
             + both(nodes.a, nodes.b) + "\nneg_relay: " + relay.output();
  return out;
}

} // namespace

TEST_CASE("a peer lists and previews only the collections offered to it",
          "[integration][federation][collections]") {
  linked_pair nodes;
  auto author = nostr::generate_keypair();
  auto now = test::unix_now();
  std::vector<nostr::event> profiles;
  for (int i = 0; i < 4; ++i)
    profiles.push_back(make_versioned(nostr::generate_keypair(), 0,
                                      now - 100 + i));
  for (int i = 0; i < 3; ++i)
    profiles.push_back(make_versioned(author, 30023, now - 50 + i,
                                      "post-" + std::to_string(i)));
  auto notes = sync_test::make_events(author, 5, now, 1, "note");
  sync_test::publish(nodes.a.relay_port, profiles);
  sync_test::publish(nodes.a.relay_port, notes);
  // Newest first: the 30023s (now-48..now-50), then the kind 0s.
  auto newest_first = profiles;
  std::sort(newest_first.begin(), newest_first.end(),
            [](const auto& x, const auto& y) {
              return x.created_at > y.created_at;
            });
  uint64_t bytes = 0;
  for (const auto& ev : profiles)
    bytes += nostr::to_json(ev).size();

  const std::string events_target
    = "/api/v1/federation/collections/profiles/events";
  auto page_ids = [&](const std::string& query) {
    auto res = nodes.ask_a(events_target + query);
    INFO(query << " -> " << res.response.body);
    REQUIRE(res.response.status == 200);
    std::vector<std::string> ids;
    auto body = body_of(res);
    for (const auto& ev : body.at("events").as_array())
      ids.push_back(std::string{ev.at("id").as_string()});
    return ids;
  };
  auto ids_at = [&](std::initializer_list<size_t> positions) {
    std::vector<std::string> ids;
    for (auto i : positions)
      ids.push_back(hex_id(newest_first[i]));
    return ids;
  };

  SECTION("the list: only its collections, with events and bytes") {
    auto res = nodes.ask_a("/api/v1/federation/collections");
    INFO(res.response.body);
    REQUIRE(res.response.status == 200);
    auto body = body_of(res);
    CHECK(body.at("pubkey") == json::value(nodes.a.pubkey()));
    const auto& list = body.at("collections").as_array();
    REQUIRE(list.size() == 1);
    CHECK(list[0].at("name") == "profiles");
    CHECK(json::serialize(list[0].at("filters")) == R"([{"kinds":[0,30023]}])");
    CHECK(number(list[0], "events") == 7);
    CHECK(number(list[0], "bytes") == static_cast<int64_t>(bytes));
    // The operator sees every collection and whom it is offered to.
    auto ours = nodes.a.call("GET", "/api/v1/federation/our-collections");
    REQUIRE(ours.response.status == 200);
    auto ours_body = body_of(ours);
    const auto& all = ours_body.at("collections").as_array();
    REQUIRE(all.size() == 2);
    CHECK(all[0].at("name") == "profiles");
    CHECK(json::serialize(all[0].at("peers")) == R"(["b"])");
    CHECK(all[1].at("name") == "notes");
    CHECK(number(all[1], "events") == 5);
    CHECK(all[1].at("peers").as_array().empty());
    // Sizes are reused only while nothing new is stored.
    sync_test::publish(nodes.a.relay_port,
                       sync_test::make_events(author, 1, now + 1, 1, "one more"));
    auto grown = body_of(nodes.a.call("GET", "/api/v1/federation/our-collections"));
    CHECK(number(grown.at("collections").as_array()[1], "events") == 6);
    auto [status, printed] = nodes.a.console({"collections"});
    INFO(printed);
    CHECK(status == 0);
    CHECK(printed.find("profiles") != std::string::npos);
    CHECK(printed.find(std::to_string(bytes)) != std::string::npos);
    // Offering more through the API takes effect at once.
    auto put = nodes.a.call(
      "PUT", "/api/v1/federation/peers/b",
      R"({"endpoint":")" + nodes.b.relay_url() + R"(","admin_url":")"
        + nodes.b.admin_url()
        + R"(","filters":[{"kinds":[7777]}],"collections":["notes","profiles"]})");
    INFO(put.response.body);
    REQUIRE(put.response.status == 200);
    auto more = body_of(nodes.ask_a("/api/v1/federation/collections"));
    const auto& offered = more.at("collections").as_array();
    // In the order of our [[federation.collection]] tables.
    REQUIRE(offered.size() == 2);
    CHECK(offered[0].at("name") == "profiles");
    CHECK(offered[1].at("name") == "notes");
    CHECK(number(offered[1], "events") == 6);
    CHECK(nodes.ask_a("/api/v1/federation/collections/notes/events")
            .response.status
          == 200);
  }

  SECTION("the other way: B offers a collection to A, which registered") {
    // Nothing yet: A's link on B was made by A's registration.
    auto none = nodes.b.signed_call(nodes.a.keys, "GET",
                                    "/api/v1/federation/collections");
    REQUIRE(none.response.status == 200);
    CHECK(body_of(none).at("collections").as_array().empty());
    const std::string target = "/api/v1/federation/peers/a/collections";
    for (auto [body, field] : std::vector<std::pair<std::string, std::string>>{
           {"{}", "collections"},
           {R"({"collections":"notes"})", "collections"},
           {R"({"collections":["Notes"]})", "collections[0]"},
           {R"({"collections":["notes","nope"]})", "collections[1]"},
           {R"({"collections":["notes"],"x":1})", "x"},
           {"[", "body"},
         }) {
      auto bad = nodes.b.call("PUT", target, body);
      INFO(body << " -> " << bad.response.body);
      CHECK(bad.response.status == 400);
      CHECK(error_field(bad) == field);
    }
    CHECK(nodes.b.call("PUT", "/api/v1/federation/peers/nobody/collections",
                       R"({"collections":[]})")
            .response.status
          == 404);
    auto unchanged = nodes.b.peer("a");
    CHECK(unchanged.at("collections").as_array().empty());
    auto set = nodes.b.call("PUT", target, R"({"collections":["notes"]})");
    INFO(set.response.body);
    REQUIRE(set.response.status == 200);
    CHECK(json::serialize(body_of(set).at("collections")) == R"(["notes"])");
    auto listed = nodes.b.signed_call(nodes.a.keys, "GET",
                                      "/api/v1/federation/collections");
    REQUIRE(listed.response.status == 200);
    auto listed_body = body_of(listed);
    const auto& offered = listed_body.at("collections").as_array();
    REQUIRE(offered.size() == 1);
    CHECK(offered[0].at("name") == "notes");
    CHECK(number(offered[0], "events") == 0);
    // B's operator still cannot redefine A's side of the link.
    CHECK(nodes.b.call("PUT", "/api/v1/federation/peers/a",
                       R"({"endpoint":"ws://127.0.0.1:1",)"
                       R"("admin_url":"http://127.0.0.1:1","filters":[{}]})")
            .response.status
          == 409);
  }

  SECTION("previews: newest first, limit, offset, since, until, ids") {
    CHECK(page_ids("") == ids_at({0, 1, 2, 3, 4, 5, 6}));
    CHECK(page_ids("?limit=2") == ids_at({0, 1}));
    CHECK(page_ids("?limit=3&offset=2") == ids_at({2, 3, 4}));
    CHECK(page_ids("?offset=6") == ids_at({6}));
    CHECK(page_ids("?offset=7").empty());
    auto since = std::to_string(newest_first[2].created_at);
    auto until = std::to_string(newest_first[4].created_at);
    CHECK(page_ids("?since=" + since) == ids_at({0, 1, 2}));
    CHECK(page_ids("?until=" + until) == ids_at({4, 5, 6}));
    CHECK(page_ids("?since=" + until + "&until=" + since) == ids_at({2, 3, 4}));
    // ids: the collection's only; a note's id finds nothing.
    CHECK(page_ids("?ids=" + hex_id(newest_first[5]) + "%2C"
                   + hex_id(newest_first[1]) + "," + hex_id(notes[0]))
          == ids_at({1, 5}));
    auto res = nodes.ask_a(events_target + "?limit=1");
    CHECK(body_of(res).at("pubkey") == json::value(nodes.a.pubkey()));
    CHECK(number(body_of(res), "limit") == 1);
  }

  SECTION("bad queries: 400 naming the parameter") {
    for (auto [query, field] : std::vector<std::pair<std::string, std::string>>{
           {"?limit=101", "limit"},
           {"?limit=0", "limit"},
           {"?limit=ten", "limit"},
           {"?offset=-1", "offset"},
           {"?offset=10001", "offset"},
           {"?since=yesterday", "since"},
           {"?until=1.5", "until"},
           {"?ids=abc", "ids"},
           {"?ids=" + std::string(64, 'A'), "ids"},
           {"?limit=1&limit=2", "query"},
           {"?order=asc", "order"},
         }) {
      auto res = nodes.ask_a(events_target + query);
      INFO(query << " -> " << res.response.body);
      CHECK(res.response.status == 400);
      CHECK(error_field(res) == field);
    }
    // A query on a route that takes none.
    auto res = nodes.ask_a("/api/v1/federation/collections?limit=1");
    CHECK(res.response.status == 400);
    CHECK(error_field(res) == "target");
  }

  SECTION("not offered, unknown, or not a peer: refused") {
    for (auto name : {"notes", "nothing"}) {
      auto res = nodes.ask_a("/api/v1/federation/collections/"
                             + std::string{name} + "/events");
      INFO(res.response.body);
      CHECK(res.response.status == 403);
      CHECK(body_of(res).at("error").at("message").as_string().starts_with(
        "restricted:"));
    }
    auto stranger = nostr::generate_keypair();
    CHECK(nodes.a.signed_call(stranger, "GET", "/api/v1/federation/collections")
            .response.status
          == 404);
    CHECK(nodes.a.call("GET", "/api/v1/federation/collections").response.status
          == 401);
    // A suspended link serves nothing.
    auto suspend = nodes.a.call("POST", "/api/v1/federation/peers/b/status",
                                R"({"status":"suspended"})");
    REQUIRE(suspend.response.status == 200);
    auto res = nodes.ask_a("/api/v1/federation/collections");
    CHECK(res.response.status == 403);
    CHECK(body_of(res).at("error").at("message").as_string().starts_with(
      "restricted:"));
  }

  SECTION("a link our operator paused serves nothing until it resumes") {
    auto pause = nodes.a.call("POST", "/api/v1/federation/peers/b/pause", "{}");
    REQUIRE(pause.response.status == 200);
    for (const auto& target :
         {events_target, std::string{"/api/v1/federation/collections"}}) {
      auto res = nodes.ask_a(target);
      INFO(target << " -> " << res.response.body);
      CHECK(res.response.status == 403);
      CHECK(body_of(res).at("error").at("message")
            == "restricted: this node paused its federation link with yours");
    }
    auto resume = nodes.a.call("POST", "/api/v1/federation/peers/b/resume",
                               "{}");
    REQUIRE(resume.response.status == 200);
    CHECK(page_ids("?limit=1") == ids_at({0}));
  }
}

TEST_CASE("a node in mode subscribe serves peers no collection over HTTP, as "
          "its relay serves them nothing",
          "[integration][federation][collections]") {
  linked_pair nodes{{}, {}, {}, "mode = \"subscribe\"\n"};
  for (const std::string target :
       {"/api/v1/federation/collections",
        "/api/v1/federation/collections/profiles/events"}) {
    auto res = nodes.ask_a(target);
    INFO(target << " -> " << res.response.body);
    CHECK(res.response.status == 403);
    CHECK(body_of(res).at("error").at("message")
          == "restricted: this node does not serve its events to federation "
             "peers ([federation] mode = subscribe)");
  }
  // A key with no link is still told it has none.
  CHECK(nodes.a.signed_call(nostr::generate_keypair(), "GET",
                            "/api/v1/federation/collections")
          .response.status
        == 404);
}

TEST_CASE("a pull settles replaceable and addressable events by the "
          "conflict strategy",
          "[integration][federation][collections]") {
  linked_pair nodes;
  auto x = nostr::generate_keypair();
  auto y = nostr::generate_keypair();
  auto z = nostr::generate_keypair();
  auto t = test::unix_now() - 1000;
  // Kind 0 of X and article "p": A's newer. Kind 0 of Y and article "q":
  // B's newer. Z's kind 0 and article "r": only A has them.
  auto x0_old = make_versioned(x, 0, t);
  auto x0_new = make_versioned(x, 0, t + 10);
  auto y0_old = make_versioned(y, 0, t);
  auto y0_new = make_versioned(y, 0, t + 10);
  auto p_old = make_versioned(x, 30023, t, "p");
  auto p_new = make_versioned(x, 30023, t + 10, "p");
  auto q_old = make_versioned(x, 30023, t, "q");
  auto q_new = make_versioned(x, 30023, t + 10, "q");
  // An article without a `d` tag has the address "": A's newer.
  auto u_old = make_versioned(y, 30023, t);
  auto u_new = make_versioned(y, 30023, t + 10);
  auto z0 = make_versioned(z, 0, t + 5);
  auto r = make_versioned(x, 30023, t + 5, "r");
  auto note = test::make_note(x, t, "not in the collection");
  sync_test::publish(nodes.a.relay_port,
                     {x0_new, y0_old, p_new, q_old, u_new, z0, r, note});
  sync_test::publish(nodes.b.relay_port,
                     {x0_old, y0_new, p_old, q_new, u_old});
  auto ids = [](std::initializer_list<const nostr::event*> events) {
    std::set<std::string> out;
    for (auto ev : events)
      out.insert(hex_id(*ev));
    return out;
  };
  auto check_report = [](const net::http_result& res, int64_t imported,
                         int64_t skipped, int64_t replaced, int64_t refused) {
    INFO(res.response.body);
    REQUIRE(res.response.status == 200);
    auto report = body_of(res);
    CHECK(number(report, "imported") == imported);
    CHECK(number(report, "skipped") == skipped);
    CHECK(number(report, "replaced") == replaced);
    CHECK(number(report, "refused") == refused);
    CHECK(number(report, "failed") == 0);
  };

  SECTION("merge (the default): the newest version wins") {
    check_report(nodes.pull(R"({"collection":"profiles"})"), 2, 2, 3, 0);
    CHECK(ids_of(nodes.b.relay_port, profiles_filter)
          == ids({&x0_new, &y0_new, &p_new, &q_new, &u_new, &z0, &r}));
    CHECK(ids_of(nodes.b.relay_port, R"({"kinds":[1]})").empty());
    auto metrics = nodes.b.call("GET", "/metrics").response.body;
    CHECK(metrics.find(R"(ferry_federation_pulled_events_total{peer="a",result="replaced"} 3)")
          != std::string::npos);
    // Again, from the console: nothing new, A's older versions are still
    // older.
    auto [status, printed] = nodes.b.console({"pull", "a", "profiles", "merge"});
    CHECK(status == 0);
    CHECK(printed
          == "a/profiles (merge): 0 imported, 2 skipped, 0 replaced, 0 "
             "refused, 0 failed\n");
  }

  SECTION("skip: ours stays whatever its age") {
    check_report(nodes.pull(R"({"collection":"profiles",)"
                            R"("conflict_strategy":"skip"})"),
                 2, 5, 0, 0);
    CHECK(ids_of(nodes.b.relay_port, profiles_filter)
          == ids({&x0_old, &y0_new, &p_old, &q_new, &u_old, &z0, &r}));
  }

  SECTION("overwrite: theirs replaces ours even when ours is newer") {
    check_report(nodes.pull(R"({"collection":"profiles",)"
                            R"("conflict_strategy":"overwrite"})"),
                 2, 0, 5, 0);
    CHECK(ids_of(nodes.b.relay_port, profiles_filter)
          == ids({&x0_new, &y0_old, &p_new, &q_old, &u_new, &z0, &r}));
    // Again: every version is theirs already.
    auto [status, printed]
      = nodes.b.console({"pull", "a", "profiles", "overwrite"});
    CHECK(status == 0);
    CHECK(printed
          == "a/profiles (overwrite): 0 imported, 0 skipped, 0 replaced, 0 "
             "refused, 0 failed\n");
  }

  SECTION("bad bodies and collections not offered: refused, nothing moved") {
    for (auto [body, status, field] :
         std::vector<std::tuple<std::string, unsigned, std::string>>{
           {"{}", 400, "collection"},
           {"not json", 400, "body"},
           {R"({"collection":7})", 400, "collection"},
           {R"({"collection":"profiles","conflict_strategy":"newest"})", 400,
            "conflict_strategy"},
           {R"({"collection":"profiles","conflict_strategy":"Overwrite"})",
            400, "conflict_strategy"},
           {R"({"collection":"profiles","x":1})", 400, "x"},
           {R"({"collection":"nothing"})", 404, "collection"},
         }) {
      auto res = nodes.pull(body);
      INFO(body << " -> " << res.response.body);
      CHECK(res.response.status == status);
      CHECK(error_field(res) == field);
    }
    auto [status, printed] = nodes.b.console({"pull", "a", "profiles", "newest"});
    CHECK(status == 1);
    CHECK(printed.find("conflict_strategy: expected one of skip, merge, overwrite")
          != std::string::npos);
    CHECK(nodes.b.console({"pull", "a"}).first == 2);
    auto notes = nodes.pull(R"({"collection":"notes"})");
    INFO(notes.response.body);
    CHECK(notes.response.status == 404);
    CHECK(nodes.b.call("POST", "/api/v1/federation/peers/nobody/pull",
                       R"({"collection":"profiles"})")
            .response.status
          == 404);
    CHECK(ids_of(nodes.b.relay_port, profiles_filter)
          == ids({&x0_old, &y0_new, &p_old, &q_new, &u_old}));
  }
}

TEST_CASE("a pull does not fetch again what our policy refused from the "
          "peer before",
          "[integration][federation][collections][policy]") {
  auto x = nostr::generate_keypair();
  auto z = nostr::generate_keypair();
  linked_pair nodes{{}, {},
                    "[policy]\ndenied_pubkeys = [\"" + nostr::to_hex(z.pubkey)
                      + "\"]\n"};
  auto t = test::unix_now() - 1000;
  auto x0 = make_versioned(x, 0, t);
  auto z0 = make_versioned(z, 0, t);
  auto zr = make_versioned(z, 30023, t, "r");
  sync_test::publish(nodes.a.relay_port, {x0, z0, zr});
  // What B's verifiers and policy answered for the peer's refused events.
  auto judged = [&] {
    auto metrics = nodes.b.call("GET", "/metrics").response.body;
    static const std::regex line{
      R"re(ferry_events_total\{[^}]*result="refused",source="federation:a"\} ([0-9]+))re"};
    int64_t n = 0;
    for (std::sregex_iterator i{metrics.begin(), metrics.end(), line}, end;
         i != end; ++i)
      n += std::stoll((*i)[1].str());
    return n;
  };
  auto check_pull = [&](int64_t imported) {
    auto res = nodes.pull(R"({"collection":"profiles"})");
    INFO(res.response.body);
    REQUIRE(res.response.status == 200);
    auto report = body_of(res);
    CHECK(number(report, "imported") == imported);
    CHECK(number(report, "refused") == 2);
  };
  check_pull(1);
  CHECK(judged() == 2);
  // Again: the two are counted as refused from the memory, not fetched, so
  // nothing judges them a second time.
  check_pull(0);
  CHECK(judged() == 2);
  CHECK(ids_of(nodes.b.relay_port, profiles_filter)
        == std::set<std::string>{hex_id(x0)});
}

// B runs one verifier, and the operator stops it from the console: no
// verifier takes the pull's batches. Their events count as failed, not
// refused (nothing judged them), the pull answers without waiting for its
// deadline, and once the verifier runs again the next pull brings them.
TEST_CASE("a pull whose verifier is stopped reports its events failed, and "
          "the next pull brings them",
          "[integration][federation][collections]") {
  auto x = nostr::generate_keypair();
  auto t = test::unix_now() - 1000;
  std::vector<nostr::event> offered{make_versioned(x, 0, t),
                                    make_versioned(x, 30023, t, "a"),
                                    make_versioned(x, 30023, t, "b")};
  linked_pair nodes{{}, offered, "[ingest]\nverifiers = 1\n"};
  auto pull = [&] {
    auto res = nodes.pull(R"({"collection":"profiles"})");
    INFO(res.error << " " << res.response.body << "\n" << both(nodes.a, nodes.b));
    REQUIRE(res.response.status == 200);
    return body_of(res);
  };
  auto [stopped, stop_out] = nodes.b.console({"stop", "verifier-1"});
  INFO(stop_out);
  REQUIRE(stopped == 0);
  auto started = std::chrono::steady_clock::now();
  auto failed = pull();
  CHECK(std::chrono::steady_clock::now() - started < 30s);
  CHECK(number(failed, "failed") == 3);
  CHECK(number(failed, "imported") == 0);
  CHECK(number(failed, "refused") == 0);
  CHECK(ids_of(nodes.b.relay_port, profiles_filter).empty());
  CHECK(nodes.b.call("GET", "/metrics")
          .response.body.find(
            R"(ferry_federation_pulled_events_total{peer="a",result="failed"} 3)")
        != std::string::npos);

  auto [restarted, start_out] = nodes.b.console({"start", "verifier-1"});
  INFO(start_out);
  REQUIRE(restarted == 0);
  auto again = pull();
  CHECK(number(again, "imported") == 3);
  CHECK(number(again, "failed") == 0);
  CHECK(ids_of(nodes.b.relay_port, profiles_filter) == sync_test::id_set(offered));
}

TEST_CASE("a pull answers the NIP-42 challenge of a relay that requires it",
          "[integration][federation][collections]") {
  auto x = nostr::generate_keypair();
  auto t = test::unix_now() - 1000;
  auto older = make_versioned(x, 0, t);
  auto newer = make_versioned(x, 0, t + 10);
  auto article = make_versioned(x, 30023, t, "a");
  linked_pair nodes{"auth_required = true\n", {newer, article}};
  sync_test::publish(nodes.b.relay_port, {older});
  auto res = nodes.pull(R"({"collection":"profiles"})");
  INFO(res.error << " " << res.response.body << "\n" << both(nodes.a, nodes.b));
  REQUIRE(res.response.status == 200);
  CHECK(number(body_of(res), "imported") == 1);
  CHECK(number(body_of(res), "replaced") == 1);
  CHECK(ids_of(nodes.b.relay_port, profiles_filter)
        == std::set<std::string>{hex_id(newer), hex_id(article)});
}

// A peer behind a relay that answers fetches by id its own way (A's
// public_url names neg_relay.mjs, nostr-tools' NIP-77, holding A's
// collection): a refusal ends the pull with the relay's reason and an HTTP
// status that tells the caller whether to ask again later; a challenge sent
// only with the CLOSED of a fetch is answered and the fetch goes on.
TEST_CASE("a pull ends with 429 or 502 when the peer's relay refuses a fetch "
          "by ids, and fetches on once authenticated when it asks for AUTH",
          "[integration][federation][collections][interop]") {
  auto x = nostr::generate_keypair();
  auto t = test::unix_now() - 1000;
  auto profile = make_versioned(x, 0, t);
  std::vector<nostr::event> offered{profile, make_versioned(x, 30023, t, "a"),
                                    make_versioned(x, 30023, t, "b")};
  auto pull_through = [&](std::vector<std::string> flags) {
    return pull_via_neg_relay(offered, std::move(flags), profiles_filter);
  };
  auto message = [](const net::http_result& res) {
    return std::string{body_of(res).at("error").at("message").as_string()};
  };
  SECTION("rate-limited: 429, with the relay's reason") {
    auto [res, held, logs] = pull_through(
      {"--refuse-id", hex_id(profile), "--refuse-reason", "rate-limited: slow down"});
    INFO(logs);
    CHECK(res.response.status == 429);
    CHECK(message(res).find("refused a fetch by ids: rate-limited: slow down")
          != std::string::npos);
    CHECK(held.count(hex_id(profile)) == 0);
  }
  SECTION("an error on the one event asked for alone: 502") {
    auto [res, held, logs] = pull_through(
      {"--refuse-id", hex_id(profile), "--refuse-reason", "error: disk on fire"});
    INFO(logs);
    CHECK(res.response.status == 502);
    CHECK(message(res).find("error: disk on fire") != std::string::npos);
    CHECK(held.count(hex_id(profile)) == 0);
  }
  SECTION("auth-required: answered, then every event fetched") {
    auto [res, held, logs] = pull_through({"--auth-for-ids"});
    INFO(logs);
    REQUIRE(res.response.status == 200);
    CHECK(number(body_of(res), "imported") == 3);
    CHECK(held == sync_test::id_set(offered));
  }
}

// A peer behind a relay that holds three subscriptions per connection and
// drops a REQ beyond them with only a NOTICE: the pull's fourth REQ by ids
// is never answered. The quiet looks ask for its ids again, and the pull
// ends with every event instead of at its deadline (504).
TEST_CASE("a pull fetches every event through a peer's relay that drops REQs "
          "beyond its subscription limit",
          "[integration][federation][collections][interop]") {
  auto x = nostr::generate_keypair();
  auto t = test::unix_now() - 5000;
  // Four REQs of 500 ids.
  std::vector<nostr::event> offered;
  for (int i = 0; i < 1700; ++i)
    offered.push_back(make_versioned(x, 30023, t + i, "article " + std::to_string(i)));
  auto [res, held, logs] = pull_via_neg_relay(offered, {"--max-subs", "3"},
                                              R"({"kinds":[30023],"limit":5000})");
  INFO(logs);
  REQUIRE(res.response.status == 200);
  CHECK(number(body_of(res), "imported") == 1700);
  CHECK(held == sync_test::id_set(offered));
  CHECK(logs.find("1 REQs by ids had no answer from ") != std::string::npos);
}

TEST_CASE("the relay serves a peer's node key only the collections offered "
          "to it",
          "[integration][federation][collections]") {
  auto x = nostr::generate_keypair();
  auto profile = make_versioned(x, 0, test::unix_now() - 10);
  auto note = test::make_note(x, test::unix_now() - 10, "not offered");
  linked_pair nodes{"auth_required = true\n", {profile, note}};
  net::simple_ws_client as_b;
  authenticate(as_b, nodes.a.relay_port, nodes.b.keys);
  // The first frame that answers `sub` (EVENT frames of a REQ skipped).
  auto answer = [&](const std::string& frame, const std::string& sub) {
    REQUIRE(as_b.send(frame).empty());
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto reply = as_b.receive(500ms);
      if (reply && reply->find("\"" + sub + "\"") != std::string::npos
          && reply->rfind("[\"EVENT\"", 0) != 0)
        return *reply;
    }
    FAIL("no answer to " << frame);
    return std::string{};
  };
  auto restricted = [](const std::string& frame) {
    return frame.find("restricted: a federation peer may read only the "
                      "collections offered to it")
           != std::string::npos;
  };
  // Within "profiles" (kinds 0 and 30023): served.
  CHECK(answer(R"(["REQ","p",{"kinds":[0]}])", "p").rfind("[\"EOSE\"", 0) == 0);
  CHECK(answer(R"(["REQ","q",{"kinds":[0,30023],"authors":[")"
                 + nostr::to_hex(x.pubkey) + R"("]}])",
               "q")
          .rfind("[\"EOSE\"", 0)
        == 0);
  CHECK(answer(R"(["COUNT","c",{"kinds":[30023]}])", "c").rfind("[\"COUNT\"", 0)
        == 0);
  // Beyond it, or not narrowed to it: refused.
  CHECK(restricted(answer(R"(["REQ","n",{"kinds":[1]}])", "n")));
  CHECK(restricted(answer(R"(["REQ","all",{}])", "all")));
  CHECK(restricted(answer(R"(["REQ","mixed",{"kinds":[0]},{"kinds":[0,1]}])",
                          "mixed")));
  CHECK(restricted(answer(R"(["REQ","ids",{"ids":[")" + sync_test::hex_id(note)
                            + R"("]}])",
                          "ids")));
  CHECK(restricted(answer(R"(["COUNT","c1",{"kinds":[1]}])", "c1")));
  CHECK(restricted(answer(R"(["NEG-OPEN","neg",{"kinds":[1]},"6100"])", "neg")));

  // Another authenticated client is not a peer: it reads what it asks for.
  net::simple_ws_client other;
  authenticate(other, nodes.a.relay_port, nostr::generate_keypair());
  REQUIRE(other.send(R"(["REQ","n",{"kinds":[1]}])").empty());
  std::vector<std::string> frames;
  REQUIRE(test::receive_until(other, "[\"EOSE\",\"n\"", &frames));
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].find(sync_test::hex_id(note)) != std::string::npos);

  // Offered nothing, the peer reads what any client may.
  REQUIRE(nodes.a.call("PUT", "/api/v1/federation/peers/b/collections",
                       R"({"collections":[]})")
            .response.status
          == 200);
  CHECK(answer(R"(["REQ","n2",{"kinds":[1]}])", "n2").rfind("[\"EOSE\"", 0)
        == 0);
}
