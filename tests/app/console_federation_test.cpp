#include "app/console_federation.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

using namespace ferry;
using namespace ferry::console;

TEST_CASE("pull words become the manager's pull call", "[console]") {
  auto call = pull_request_call("b repos skip");
  CHECK(call.op == "pull");
  CHECK(call.name == "b");
  CHECK(boost::json::parse(call.body)
        == boost::json::parse(
          R"({"collection":"repos","conflict_strategy":"skip"})"));
  auto merge = pull_request_call("b repos");
  CHECK(boost::json::parse(merge.body)
        == boost::json::parse(R"({"collection":"repos"})"));
}

TEST_CASE("a pull report reads as one line", "[console]") {
  auto report = boost::json::parse(
    R"({"peer":"a","collection":"repos","conflict_strategy":"merge",)"
    R"("imported":3,"skipped":1,"replaced":2,"refused":0,"failed":4})");
  CHECK(render_pull(report)
        == "a/repos (merge): 3 imported, 1 skipped, 2 replaced, 0 refused, 4 "
           "failed\n");
}

TEST_CASE("the collections table has one line per collection", "[console]") {
  auto list = boost::json::parse(
    R"({"collections":[)"
    R"({"name":"repos","filters":[{"kinds":[30617]}],"events":12,)"
    R"("bytes":3456,"peers":["b","c"]},)"
    R"({"name":"notes","filters":[{"kinds":[1]}],"events":0,"bytes":0,)"
    R"("peers":[]}]})");
  auto text = render_collections(list, 0);
  INFO(text);
  CHECK(text.find("NAME") == 0);
  CHECK(text.find("repos") != std::string::npos);
  CHECK(text.find("3456") != std::string::npos);
  CHECK(text.find("b,c") != std::string::npos);
  CHECK(text.find(R"([{"kinds":[30617]}])") != std::string::npos);
  // Three lines: the header and two collections.
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);
  CHECK(render_collections(boost::json::parse(R"({"collections":[]})"), 0)
        == "(no federation collections)\n");
}
