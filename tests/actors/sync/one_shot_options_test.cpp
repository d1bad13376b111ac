// The JSON a `ferry sync` handed to a node travels as: what the command
// sends is what the node reads, and a progress id that could not be a path
// segment is refused naming the field.

#include "actors/sync/one_shot_sync.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace ferry;

TEST_CASE("sync options survive their JSON, the progress id included",
          "[one_shot_sync]") {
  sync_options sent;
  sent.url = "wss://relay.test";
  sent.filter_json = R"({"kinds":[1]})";
  sent.direction = "both";
  sent.timeout_seconds = 12;
  sent.progress_id = "a1-B2_c3";
  sync_options read;
  std::string field;
  CHECK(parse_sync_options(to_json(sent), read, field).empty());
  CHECK(read.url == sent.url);
  CHECK(read.filter_json == sent.filter_json);
  CHECK(read.direction == "both");
  CHECK(read.timeout_seconds == 12);
  CHECK(read.progress_id == "a1-B2_c3");
  CHECK_FALSE(read.reconcile_when_empty);

  sent.reconcile_when_empty = true;
  sync_options reconciling;
  CHECK(parse_sync_options(to_json(sent), reconciling, field).empty());
  CHECK(reconciling.reconcile_when_empty);

  sync_options without;
  without.url = "wss://relay.test";
  CHECK(to_json(without).find("progress_id") == std::string::npos);
  CHECK(to_json(without).find("reconcile_when_empty") == std::string::npos);

  sync_options out;
  CHECK(parse_sync_options(R"({"url":"ws://127.0.0.1:1","reconcile_when_empty":1})",
                           out, field)
        == "expected true or false");
  CHECK(field == "reconcile_when_empty");
}

TEST_CASE("a progress id is 1 to 64 letters, digits, - or _",
          "[one_shot_sync]") {
  CHECK(valid_progress_id("x"));
  CHECK(valid_progress_id(std::string(64, 'a')));
  CHECK_FALSE(valid_progress_id(""));
  CHECK_FALSE(valid_progress_id(std::string(65, 'a')));
  for (auto* bad : {"a/b", "a b", "a?b", "..", "é"}) {
    INFO(bad);
    CHECK_FALSE(valid_progress_id(bad));
    sync_options out;
    std::string field;
    auto why = parse_sync_options(
      std::string{R"({"url":"ws://127.0.0.1:1","progress_id":")"} + bad
        + "\"}",
      out, field);
    CHECK(field == "progress_id");
    CHECK_FALSE(why.empty());
  }
}
