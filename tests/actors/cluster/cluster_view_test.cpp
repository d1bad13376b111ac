// The cluster view as operators read it: each hosted relay's owner is the
// rendezvous owner of its id among the live members (alive or suspect), and
// exactly the owner says it pushes the relay.

#include "actors/cluster/cluster_manager.hpp"
#include "messages/cluster/rendezvous.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace ferry;

namespace {

namespace json = boost::json;

cluster::member_info member_named(const std::string& name,
                                  cluster::member_state state) {
  cluster::member_info m;
  m.name = name;
  m.state = state;
  return m;
}

} // namespace

TEST_CASE("the cluster view names each hosted relay's owner among the live "
          "members and whether it is pushed here",
          "[cluster]") {
  cluster::cluster_view view;
  view.self = "node-a";
  view.members = {member_named("node-a", cluster::member_state::alive),
                  member_named("node-b", cluster::member_state::suspect),
                  member_named("node-c", cluster::member_state::dead)};
  std::vector<std::string> live{"node-a", "node-b"};
  std::vector<std::string> ids;
  json::array rows;
  for (int i = 0; i < 8; ++i) {
    ids.push_back("relay" + std::to_string(i));
    // The registry's rows carry more than the id: only the id counts.
    rows.push_back(json::object{{"id", ids.back()}, {"synced", false}});
  }
  auto text = cluster_view_json(view, "[]", json::serialize(rows), 0, {});
  auto hosted = json::parse(text).at("hosted_relays").as_array();
  REQUIRE(hosted.size() == ids.size());
  int here = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto& row = hosted[i].as_object();
    auto owner = *cluster::rendezvous_owner(ids[i], live);
    CHECK(row.at("id") == json::value(ids[i]));
    CHECK(row.at("owner") == json::value(owner));
    CHECK(row.at("pushed_here") == json::value(owner == "node-a"));
    here += owner == "node-a" ? 1 : 0;
  }
  // Both live members own some of eight relays; the dead one none.
  CHECK(here > 0);
  CHECK(here < static_cast<int>(ids.size()));

  // An unknown or malformed list shows no hosted relays.
  for (auto* list : {"", "not json", R"({"id":"x"})"})
    CHECK(json::parse(cluster_view_json(view, "[]", list, 0, {}))
            .at("hosted_relays")
            .as_array()
            .empty());
}

TEST_CASE("a forgotten member is left out of the cluster view", "[cluster]") {
  cluster::cluster_view view;
  view.self = "node-a";
  view.members = {member_named("node-a", cluster::member_state::alive),
                  member_named("node-b", cluster::member_state::left),
                  member_named("node-c", cluster::member_state::forgotten)};
  auto shown = json::parse(cluster_view_json(view, "[]", "[]", 0, {}));
  std::vector<std::string> names;
  for (auto& m : shown.at("members").as_array())
    names.emplace_back(m.at("name").as_string());
  CHECK(names == std::vector<std::string>{"node-a", "node-b"});
  CHECK(shown.at("live") == json::array{"node-a"});
}
