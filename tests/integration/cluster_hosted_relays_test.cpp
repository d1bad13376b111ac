// Hosted relays in a cluster, on three real `ferry node` processes and a
// management-API double: a relay created on one member reaches every member,
// exactly one member (the owner of its id among the live members by
// rendezvous hashing) pushes it, a deletion on another member removes it
// everywhere and its owner deletes it on the API, and when the owner is
// killed a survivor pushes what it owned.

#include "tests/integration/cluster_helpers.hpp"
#include "tests/integration/management_api_double.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;
using cluster_test::member;
using sync_test::admin;

namespace {

namespace json = boost::json;

std::string infra_section(const std::string& api_url) {
  return "[infra]\napi_url = \"" + api_url
         + "\"\nrelay_domain = \"relays.test\"\nretry_base_ms = 100\n"
           "retry_cap_ms = 200\n";
}

std::string relay_body(const std::string& id, const std::string& name) {
  return R"({"id":")" + id + R"(","subdomain":")" + id + R"(","schema":")"
         + id + R"(_db","info":{"name":")" + name + R"(","pubkey":")"
         + std::string(64, 'a') + R"("}})";
}

/// The row `m` shows for hosted relay `id`; null when it has none.
json::value row_on(member& m, const std::string& id) {
  auto res = admin(m.admin_port, "GET", "/api/v1/relays/" + id);
  if (!res.error.empty() || res.response.status != 200)
    return nullptr;
  return json::parse(res.response.body);
}

/// The definition `m` holds for hosted relay `id` (what the node sets left
/// out: that is each node's own); null when it has none.
json::value definition_on(member& m, const std::string& id) {
  auto row = row_on(m, id);
  if (!row.is_object())
    return nullptr;
  for (auto key : {"synced", "sync_error", "created_at", "updated_at",
                   "changed_seq", "failed_attempts", "given_up"})
    row.as_object().erase(key);
  return row;
}

bool synced_on(member& m, const std::string& id) {
  auto row = row_on(m, id);
  return row.is_object() && row.at("synced").as_bool();
}

/// Waits until every member in `members` holds `want` for `id` (null: none).
void require_definition(std::vector<member*> members, const std::string& id,
                        const json::value& want,
                        std::chrono::milliseconds timeout, const char* what) {
  cluster_test::require_held(members, id, want, definition_on, timeout, what);
}

/// Each relay's owner among `up` by the hash.
std::map<std::string, std::string>
expected_owners(const std::vector<std::string>& ids, std::vector<member*> up) {
  std::vector<std::string> live;
  for (auto* m : up)
    live.push_back(m->name);
  std::map<std::string, std::string> owners;
  for (auto& id : ids)
    owners[id] = *cluster::rendezvous_owner(id, live);
  return owners;
}

/// Waits until every view in `up` names `owners` and each relay is synced on
/// its owner.
void require_pushed_by_owners(std::vector<member*> up,
                              const std::map<std::string, std::string>& owners,
                              const char* what) {
  std::map<std::string, member*> by_name;
  for (auto* m : up)
    by_name[m->name] = m;
  std::string problem;
  auto ok = test::poll_until(
    [&] {
      for (auto* m : up)
        if (cluster_test::owners_in(m->view(), "hosted_relays") != owners) {
          problem = m->name + " states other owners";
          return false;
        }
      for (auto& [id, owner] : owners)
        if (!synced_on(*by_name.at(owner), id)) {
          problem = id + " is not synced on its owner " + owner;
          return false;
        }
      return true;
    },
    15s, 100ms);
  if (!ok)
    FAIL(what << ": " << problem << "\n" << cluster_test::dump(up));
}

/// "METHOD@member" for each request the API got for `id`, oldest first.
std::vector<std::string> requests_for(test::management_api& api,
                                      const std::string& id,
                                      std::vector<member*> members) {
  std::vector<std::string> result;
  for (auto& p : api.pushes_of(id)) {
    std::string who = "unsigned";
    for (auto* m : members)
      if (m->pubkey() == p.signer)
        who = m->name;
    result.push_back(p.method + "@" + who);
  }
  return result;
}

} // namespace

TEST_CASE("hosted relays replicate to every cluster member and each is "
          "pushed by exactly one, its owner, also after the owner died",
          "[integration][cluster][hosted]") {
  test::management_api api{"/zooid"};
  cluster_test::three_members trio{infra_section(api.url())};
  trio.start_joined();
  member& a = trio.a;
  member& b = trio.b;
  member& c = trio.c;
  auto all = trio.all();

  // Six relays, created on a: every member gets each, its owner pushes it.
  std::vector<std::string> ids{"club", "shop", "news", "chat", "arts", "dev"};
  for (auto& id : ids) {
    auto res = admin(a.admin_port, "POST", "/api/v1/relays",
                     relay_body(id, "Relay " + id));
    INFO(res.error << res.response.body);
    REQUIRE(res.response.status == 201);
  }
  for (auto& id : ids)
    require_definition({&b, &c}, id, definition_on(a, id), 10s, "replicated");
  auto owners = expected_owners(ids, all);
  require_pushed_by_owners(all, owners, "pushed by the owners");

  // An update on c reaches every member; the owner pushes it.
  auto patch = admin(c.admin_port, "PATCH", "/api/v1/relays/club",
                     R"({"info":{"name":"Renamed on c"}})");
  REQUIRE(patch.response.status == 200);
  auto renamed = definition_on(c, "club");
  require_definition({&a, &b}, "club", renamed, 10s, "update replicated");
  require_pushed_by_owners(all, owners, "the update pushed by the owner");

  // Exactly one member wrote each relay: its owner, once per version.
  for (auto& id : ids) {
    std::vector<std::string> want{"POST@" + owners[id]};
    if (id == "club")
      want.push_back("PATCH@" + owners[id]);
    INFO(id);
    CHECK(requests_for(api, id, all) == want);
  }

  // A deletion on b of a relay another member owns: gone everywhere, and
  // deleted on the API by its owner alone.
  std::string doomed;
  for (auto& id : ids)
    if (owners[id] != b.name && id != "club")
      doomed = id;
  REQUIRE_FALSE(doomed.empty());
  auto erase = admin(b.admin_port, "DELETE", "/api/v1/relays/" + doomed);
  REQUIRE(erase.response.status == 200);
  require_definition(all, doomed, nullptr, 10s, "deletion replicated");
  auto deleted = test::poll_until(
    [&] { return requests_for(api, doomed, all).size() == 2; }, 10s, 50ms);
  if (!deleted)
    FAIL("no DELETE of " << doomed << "\n" << cluster_test::dump(all));
  CHECK(requests_for(api, doomed, all)
        == std::vector<std::string>{"POST@" + owners[doomed],
                                    "DELETE@" + owners[doomed]});
  ids.erase(std::find(ids.begin(), ids.end(), doomed));
  owners.erase(doomed);

  // kill -9 the owner of "club": each relay it owned is pushed by its new
  // owner among the survivors, nothing else moves.
  auto victim_name = owners["club"];
  member* victim = nullptr;
  std::vector<member*> survivors;
  for (auto* m : all) {
    if (m->name == victim_name)
      victim = m;
    else
      survivors.push_back(m);
  }
  std::map<std::string, size_t> before;
  for (auto& id : ids)
    before[id] = api.pushes_of(id).size();
  victim->process->kill(SIGKILL);
  cluster_test::require_live(survivors, 20s, "after the owner was killed");
  auto new_owners = expected_owners(ids, survivors);
  require_pushed_by_owners(survivors, new_owners,
                           "pushed by the new owners");
  for (auto& id : ids) {
    auto requests = requests_for(api, id, all);
    std::vector<std::string> after(requests.begin() + before[id],
                                   requests.end());
    INFO(id << " was owned by " << owners[id]);
    if (owners[id] == victim_name)
      CHECK(after == std::vector<std::string>{"POST@" + new_owners[id]});
    else
      CHECK(after.empty());
  }
  // A relay created on a survivor now: replicated and pushed once.
  auto fresh = admin(survivors[0]->admin_port, "POST", "/api/v1/relays",
                     relay_body("late", "Late"));
  REQUIRE(fresh.response.status == 201);
  require_definition({survivors[1]}, "late",
                     definition_on(*survivors[0], "late"), 10s,
                     "created after the kill");
  auto late_owner = expected_owners({"late"}, survivors).at("late");
  ids.push_back("late");
  new_owners["late"] = late_owner;
  require_pushed_by_owners(survivors, new_owners, "the late relay pushed");
  CHECK(requests_for(api, "late", all)
        == std::vector<std::string>{"POST@" + late_owner});
  for (auto* m : survivors)
    CHECK(m->process->kill(SIGTERM) == 0);
}

TEST_CASE("a hosted relay a member refused is applied there once a reload "
          "lets it take the relay",
          "[integration][cluster][hosted]") {
  test::management_api api{""};
  member a, b;
  a.name = "node-a";
  b.name = "node-b";
  std::vector<std::string> allowed{a.pubkey(), b.pubkey()};
  auto with_bucket
    = infra_section(api.url()) + "[infra.blossom]\nbucket = \"media\"\n";
  a.configure(with_bucket, {b.cluster_address()}, allowed);
  // b offers no blossom yet: its registry refuses a relay that enables it.
  b.configure(infra_section(api.url()), {a.cluster_address()}, allowed);
  a.start();
  b.start();
  cluster_test::require_live({&a, &b}, 20s, "two members");
  auto res = admin(a.admin_port, "POST", "/api/v1/relays",
                   R"({"id":"media","subdomain":"media","schema":"media_db",)"
                   R"("blossom_enabled":true,"info":{"pubkey":")"
                     + std::string(64, 'a') + R"("}})");
  INFO(res.error << res.response.body);
  REQUIRE(res.response.status == 201);
  auto wanted = definition_on(a, "media");
  auto refused = test::poll_until(
    [&] {
      return b.process->output().find("could not apply the replicated "
                                      "hosted_relay media")
             != std::string::npos;
    },
    10s, 50ms);
  if (!refused)
    FAIL("b did not try the relay\n" << cluster_test::dump({&a, &b}));
  CHECK(definition_on(b, "media").is_null());
  // Not taking it is no local deletion: a keeps the relay.
  CHECK(definition_on(a, "media") == wanted);
  // b's operator sees it in /health until b takes it.
  auto names_media = [&] {
    auto health = admin(b.admin_port, "GET", "/health");
    return health.response.status == 503
           && health.response.body.find(
                "cannot apply the replicated hosted_relay media")
                != std::string::npos;
  };
  if (!test::poll_until(names_media, 10s))
    FAIL("b's /health does not name the refused relay\n"
         << admin(b.admin_port, "GET", "/health").response.body);

  b.configure(with_bucket, {a.cluster_address()}, allowed);
  b.process->signal(SIGHUP);
  require_definition({&b}, "media", wanted, 10s, "applied after the reload");
  CHECK(definition_on(a, "media") == wanted);
  CHECK(test::poll_until([&] { return !names_media(); }, 10s));
  for (auto* m : {&a, &b})
    CHECK(m->process->kill(SIGTERM) == 0);
}
