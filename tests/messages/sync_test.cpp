#include "messages/sync.hpp"

#include "messages/error.hpp"
#include "messages/nostr/hex.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace ferry;

namespace {

const std::string key_a(64, 'a');

/// A body with the required fields plus `extra` (",\"key\":value" pieces).
std::string body(const std::string& extra = {},
                 const std::string& url = "wss://relay.example.com") {
  return R"({"id":"s1","url":")" + url + R"(","filters":[{"kinds":[1]}])"
         + extra + "}";
}

/// The error text of parsing `json`, or "ok".
std::string error_of(const std::string& json, const std::string& path_id = {}) {
  auto result = parse_sync_server(json, path_id);
  if (result)
    return "ok";
  CHECK(result.error() == caf::make_error(ec::invalid_input));
  return render(result.error());
}

sync_server parse_ok(const std::string& json, const std::string& path_id = {}) {
  auto result = parse_sync_server(json, path_id);
  if (!result)
    FAIL(render(result.error()));
  return *result;
}

} // namespace

TEST_CASE("a minimal definition takes every default", "[sync]") {
  auto s = parse_ok(body());
  CHECK(s.id == "s1");
  CHECK(s.url == "wss://relay.example.com");
  CHECK(s.enabled);
  CHECK(s.auth_pubkey.empty());
  REQUIRE(s.filters.size() == 1);
  CHECK(nostr::to_json(s.filters[0]) == R"({"kinds":[1]})");
  CHECK(s.direction == sync_direction::down);
  CHECK(s.mode == sync_mode::req_stream);
  CHECK(s.overlap_window_seconds == 300);
  CHECK(s.relay_info == relay_info_mode::best_effort);
  CHECK(s.auth == auth_mode::on_challenge);
  CHECK(s.tls.mode == "required");
  CHECK(s.tls.pins.empty());
  CHECK(s.metadata_json == "{}");
}

TEST_CASE("every field parses", "[sync]") {
  auto s = parse_ok(R"({
    "id": "tribes-primary.eu_1",
    "url": "WSS://Relay-A.Example:8443/relay?x=1",
    "enabled": false,
    "auth_pubkey": ")" + key_a + R"(",
    "filters": [{"kinds": [5000, 1, 1]}, {"#t": ["b", "a"], "since": 10}],
    "direction": "both",
    "mode": "negentropy",
    "overlap_window_seconds": 0,
    "relay_info_mode": "required",
    "auth": {"type": "nip42", "mode": "always"},
    "tls": {
      "mode": "required",
      "hostname": "Relay-A.Example",
      "ca_certfile": "/etc/ca.pem",
      "client_certfile": "/etc/node.crt",
      "client_keyfile": "/etc/node.key",
      "pins": [{"type": "spki_sha256", "value": ")" + key_a + R"("},
               {"value": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}]
    },
    "metadata": {"owner": "ops", "n": [1, 2]}
  })");
  CHECK(s.id == "tribes-primary.eu_1");
  CHECK(s.url == "wss://relay-a.example:8443/relay?x=1");
  CHECK_FALSE(s.enabled);
  CHECK(s.auth_pubkey == key_a);
  REQUIRE(s.filters.size() == 2);
  CHECK(nostr::to_json(s.filters[0]) == R"({"kinds":[1,5000]})");
  CHECK(nostr::to_json(s.filters[1]) == R"({"#t":["a","b"],"since":10})");
  CHECK(s.direction == sync_direction::both);
  CHECK(s.mode == sync_mode::negentropy);
  CHECK(s.overlap_window_seconds == 0);
  CHECK(s.relay_info == relay_info_mode::required);
  CHECK(s.auth == auth_mode::always);
  CHECK(s.tls.hostname == "relay-a.example");
  CHECK(s.tls.ca_certfile == "/etc/ca.pem");
  CHECK(s.tls.client_certfile == "/etc/node.crt");
  CHECK(s.tls.client_keyfile == "/etc/node.key");
  REQUIRE(s.tls.pins.size() == 2);
  CHECK(s.tls.pins[1].type == "spki_sha256");
  CHECK(s.metadata_json == R"({"owner":"ops","n":[1,2]})");
}

TEST_CASE("the URL is normalized", "[sync]") {
  auto url_of = [](const std::string& url) { return parse_ok(body({}, url)).url; };
  CHECK(url_of("wss://relay.example.com/") == "wss://relay.example.com");
  CHECK(url_of("WSS://RELAY.Example.COM:443") == "wss://relay.example.com");
  CHECK(url_of("wss://relay.example.com:80") == "wss://relay.example.com:80");
  CHECK(url_of("wss://relay.example.com/Path/") == "wss://relay.example.com/Path/");
  CHECK(url_of("wss://[::1]:7447/x") == "wss://[::1]:7447/x");
  auto plain = parse_ok(body(R"(,"tls":{"mode":"disabled"})",
                             "ws://127.0.0.1:80/?a=B"));
  CHECK(plain.url == "ws://127.0.0.1?a=B");
}

TEST_CASE("without tls.mode the URL's scheme decides it", "[sync]") {
  CHECK(parse_ok(body({}, "ws://r.example")).tls.mode == "disabled");
  CHECK(parse_ok(body({}, "wss://r.example")).tls.mode == "required");
  CHECK(parse_ok(body(R"(,"tls":{"hostname":"h.example"})", "wss://r.example"))
          .tls.mode
        == "required");
}

TEST_CASE("the id may come from the path", "[sync]") {
  auto no_id = R"({"url":"wss://r.example","filters":[{}]})";
  CHECK(parse_ok(no_id, "from-path").id == "from-path");
  CHECK(parse_ok(body(), "s1").id == "s1");
  CHECK(error_of(body(), "other") == "id: does not match the id in the path");
  CHECK(error_of(no_id) == "id: required");
  CHECK(error_of(no_id, "Bad")
        == "id: expected 1 to 64 characters of a-z, 0-9, '.', '_' or '-', "
           "starting with a letter or digit");
}

TEST_CASE("every invalid field is named", "[sync]") {
  const std::string bad_id_reason
    = "expected 1 to 64 characters of a-z, 0-9, '.', '_' or '-', starting "
      "with a letter or digit";
  auto with_id = [](const std::string& id) {
    return R"({"id":)" + id + R"(,"url":"wss://r.example","filters":[{}]})";
  };
  auto cases = std::vector<std::pair<std::string, std::string>>{
    {"", "body: invalid JSON: incomplete JSON"},
    {"{x}", "body: invalid JSON: syntax error"},
    {body() + "x", "body: invalid JSON: extra data"},
    {"[1]", "body: expected a JSON object"},
    {body(R"(,"extra":1)"), "extra: unknown key"},
    {body(R"(,"enabled":true,"enabled":false)"), "enabled: duplicate key"},
    {body(R"(,"metadata":{"a":1,"b":{"c":[{"d":1,"d":2}]}})"),
     "metadata.b.c[0].d: duplicate key"},
    {with_id("\"Upper\""), "id: " + bad_id_reason},
    {with_id("\"-lead\""), "id: " + bad_id_reason},
    {with_id("\"\""), "id: " + bad_id_reason},
    {with_id('"' + std::string(65, 'a') + '"'), "id: " + bad_id_reason},
    {with_id("7"), "id: expected a string"},
    {R"({"id":"s","filters":[{}]})", "url: required"},
    {body({}, "https://r.example"), "url: expected a ws:// or wss:// URL"},
    {R"({"id":"s","url":5,"filters":[{}]})", "url: expected a ws:// or wss:// URL"},
    {body({}, "wss://r.example/#top"), "url: a relay URL cannot have a fragment"},
    {body({}, "wss://u:p@r.example"),
     "url: a relay URL cannot carry a user name or password"},
    {body({}, "wss://"), "url: expected a URL with a host"},
    {body({}, "wss://r.example:0"), "url: expected a port in 1..65535"},
    {body({}, "wss://r.example:65536"), "url: expected a port in 1..65535"},
    {body({}, "wss://r example"),
     "url: expected a URL without spaces, control or non-ASCII characters"},
    {body({}, "wss://r!.example"),
     "url: expected a host of letters, digits, '.', '-' and '_', or an IPv6 "
     "literal in brackets"},
    {body(R"(,"enabled":"yes")"), "enabled: expected true or false"},
    {body(R"(,"auth_pubkey":")" + std::string(64, 'A') + "\""),
     "auth_pubkey: expected 64 lowercase hex characters or an empty string"},
    {R"({"id":"s","url":"wss://r.example"})", "filters: required"},
    {R"({"id":"s","url":"wss://r.example","filters":{}})",
     "filters: expected an array of filter objects"},
    {R"({"id":"s","url":"wss://r.example","filters":[]})",
     "filters: expected at least one filter"},
    {R"({"id":"s","url":"wss://r.example","filters":[{},1]})",
     "filters[1]: expected a filter object"},
    {R"({"id":"s","url":"wss://r.example","filters":[{},{"kinds":[1,70000]}]})",
     "filters[1].kinds: must be a list of integers in [0, 65535]"},
    {R"({"id":"s","url":"wss://r.example","filters":[{"authors":["x"]}]})",
     "filters[0].authors: must be a list of 64-character lowercase hex strings"},
    {R"({"id":"s","url":"wss://r.example","filters":[{"#t":[1]}]})",
     "filters[0].#t: must be a list of strings"},
    {R"({"id":"s","url":"wss://r.example","filters":[{"since":-1}]})",
     "filters[0].since: must be a non-negative integer"},
    {R"({"id":"s","url":"wss://r.example","filters":[{"search":"x"}]})",
     "filters[0]: unknown filter field: search"},
    {R"({"id":"s","url":"wss://r.example","filters":[{"kinds":[1],"kinds":[2]}]})",
     "filters[0].kinds: duplicate key"},
    {body(R"(,"direction":"sideways")"),
     "direction: expected one of down, up, both"},
    {body(R"(,"mode":"pull")"), "mode: expected one of req_stream, negentropy"},
    {body(R"(,"overlap_window_seconds":86401)"),
     "overlap_window_seconds: expected an integer in 0..86400"},
    {body(R"(,"overlap_window_seconds":-1)"),
     "overlap_window_seconds: expected an integer in 0..86400"},
    {body(R"(,"overlap_window_seconds":1.5)"),
     "overlap_window_seconds: expected an integer in 0..86400"},
    {body(R"(,"relay_info_mode":"maybe")"),
     "relay_info_mode: expected one of required, best_effort, disabled"},
    {body(R"(,"auth":"nip42")"), "auth: expected an object with type and mode"},
    {body(R"(,"auth":{"type":"nip98"})"), "auth.type: expected \"nip42\""},
    {body(R"(,"auth":{"mode":"sometimes"})"),
     "auth.mode: expected one of on_challenge, always, never"},
    {body(R"(,"auth":{"mode":"always","x":1})"), "auth.x: unknown key"},
    {body(R"(,"tls":[])"), "tls: expected an object"},
    {body(R"(,"tls":{"mode":"optional"})"),
     "tls.mode: expected one of required, disabled"},
    {body(R"(,"tls":{"verify":false})"), "tls.verify: unknown key"},
    {body(R"(,"tls":{"hostname":"a b"})"), "tls.hostname: expected a DNS name"},
    {body(R"(,"tls":{"ca_certfile":1})"), "tls.ca_certfile: expected a string"},
    {body(R"(,"tls":{"pins":{}})"), "tls.pins: expected an array of pins"},
    {body(R"(,"tls":{"pins":[{"value":"abc"}]})"),
     "tls.pins[0].value: expected 64 hex characters or base64 of 32 bytes"},
    {body(R"(,"tls":{"pins":[{"value":")" + std::string(64, 'A') + R"("}]})"),
     "tls.pins[0].value: expected 64 hex characters or base64 of 32 bytes"},
    {body(R"(,"tls":{"pins":[{"value":"Zm9v"}]})"),
     "tls.pins[0].value: expected 64 hex characters or base64 of 32 bytes"},
    {body(R"(,"tls":{"pins":[{"type":"sha1","value":")" + key_a + R"("}]})"),
     "tls.pins[0].type: expected \"spki_sha256\""},
    {body(R"(,"tls":{"pins":[{"type":"spki_sha256"}]})"),
     "tls.pins[0].value: required"},
    {body(R"(,"tls":{"pins":[{"value":")" + key_a + R"(","note":1}]})"),
     "tls.pins[0].note: unknown key"},
    {body(R"(,"tls":{"ca_certfile":"/ca.pem"})", "ws://r.example"),
     "tls.ca_certfile: needs tls.mode \"required\""},
    {body(R"(,"tls":{"mode":"required"})", "ws://r.example"),
     "tls.mode: \"required\" needs a wss:// url"},
    {body(R"(,"tls":{"mode":"disabled"})"),
     "tls.mode: \"disabled\" needs a ws:// url"},
    {body(R"(,"tls":{"mode":"disabled","pins":[{"value":")" + key_a + R"("}]})",
          "ws://r.example"),
     "tls.pins: needs tls.mode \"required\""},
    {body(R"(,"tls":{"mode":"disabled","ca_certfile":"/ca.pem"})",
          "ws://r.example"),
     "tls.ca_certfile: needs tls.mode \"required\""},
    {body(R"(,"tls":{"client_certfile":"/c.crt"})"),
     "tls.client_keyfile: needed with tls.client_certfile"},
    {body(R"(,"tls":{"client_keyfile":"/c.key"})"),
     "tls.client_certfile: needed with tls.client_keyfile"},
    {body(R"(,"metadata":[])"), "metadata: expected a JSON object"},
    {body(R"(,"follow_deletions":1)"), "follow_deletions: expected true or false"},
    {body(R"(,"reconcile_when_empty":"yes")"),
     "reconcile_when_empty: expected true or false"},
    {body(R"(,"policy":[])"),
     "policy: expected an object of built-in policy rules"},
    {body(R"(,"policy":{"plugin":{}})"), "policy.plugin: unknown key"},
    {body(R"(,"policy":{"denied_pubkeys":["npub1x"]})"),
     "policy.denied_pubkeys[0]: expected 64 lowercase hex characters or an "
     "npub1... key"},
    {body(R"(,"policy":{"allowed_kinds":[1,70000]})"),
     "policy.allowed_kinds[1]: expected an event kind, an integer in 0..65535"},
    {body(R"(,"policy":{"max_tags":-1})"),
     "policy.max_tags: expected a non-negative integer (0: no limit)"},
    {body(R"(,"policy":{"rate_limit":{"rate":5}})"),
     "policy.rate_limit.burst: expected at least 1 when rate is set"},
    {body(R"(,"policy":{"rate_limit":{"rate":-1,"burst":1}})"),
     "policy.rate_limit.rate: expected events per second, a number of at "
     "least 0 (0: no limit)"},
  };
  for (const auto& [json, expected] : cases) {
    CAPTURE(json);
    CHECK(error_of(json) == expected);
  }
}

TEST_CASE("canonical JSON has every field in a fixed order", "[sync]") {
  auto s = parse_ok(body(R"(,"metadata":{"z":1,"a":"x"})"));
  CHECK(to_json(s)
        == R"({"id":"s1","url":"wss://relay.example.com","enabled":true,)"
           R"("auth_pubkey":"","filters":[{"kinds":[1]}],"direction":"down",)"
           R"("mode":"req_stream","overlap_window_seconds":300,)"
           R"("follow_deletions":true,"reconcile_when_empty":false,)"
           R"("policy":{"allowed_pubkeys":[],"denied_pubkeys":[],)"
           R"("allowed_kinds":[],"denied_kinds":[],"max_content_bytes":0,)"
           R"("max_tags":0,"max_age_seconds":0,"max_future_seconds":0,)"
           R"("rate_limit":{"rate":0,"burst":0}},)"
           R"("relay_info_mode":"best_effort",)"
           R"("auth":{"type":"nip42","mode":"on_challenge"},)"
           R"("tls":{"mode":"required","hostname":"","ca_certfile":"",)"
           R"("client_certfile":"","client_keyfile":"","pins":[]},)"
           R"("metadata":{"z":1,"a":"x"}})");
}

TEST_CASE("a definition round-trips through its canonical JSON", "[sync]") {
  auto s = parse_ok(R"({"id":"r","url":"ws://h:81/p","enabled":false,
    "auth_pubkey":")" + key_a + R"(","filters":[{"ids":[")" + key_a + R"("]},
    {"authors":[")" + key_a + R"("],"kinds":[7],"#e":["x"],"until":5,"limit":9}],
    "direction":"up","mode":"negentropy","overlap_window_seconds":86400,
    "reconcile_when_empty":true,"relay_info_mode":"disabled","auth":{"mode":"never"},
    "tls":{"mode":"disabled"},"metadata":{"note":"quote \" and \\ and \u00e9"}})");
  auto json = to_json(s);
  auto again = parse_ok(json);
  CHECK(again == s);
  CHECK(to_json(again) == json);
  auto with_tls = parse_ok(body(R"(,"tls":{"hostname":"h.example","ca_certfile":"/a",
    "client_certfile":"/b","client_keyfile":"/c","pins":[{"value":")" + key_a + R"("}]})"));
  CHECK(parse_ok(to_json(with_tls)) == with_tls);
  CHECK(parse_ok(to_json(with_tls), "s1") == with_tls);
  auto changed = with_tls;
  changed.tls.pins.clear();
  CHECK(changed != with_tls);
}

TEST_CASE("a server's own policy rules parse, normalize and round-trip",
          "[sync]") {
  auto s = parse_ok(body(R"(,"follow_deletions":false,"policy":{
    "denied_pubkeys":[")" + std::string(64, 'b') + R"(",")" + key_a + R"(",
                      ")" + key_a + R"("],
    "allowed_kinds":[7,1,7],"max_content_bytes":100,"max_future_seconds":60,
    "rate_limit":{"rate":2.5,"burst":10}})"));
  CHECK_FALSE(s.follow_deletions);
  CHECK(s.policy.denied_pubkeys
        == std::vector<std::string>{key_a, std::string(64, 'b')});
  CHECK(s.policy.allowed_kinds == std::vector<int64_t>{1, 7});
  CHECK(s.policy.max_content_bytes == 100);
  CHECK(s.policy.max_future_seconds == 60);
  CHECK(s.policy.rate_limit.rate == 2.5);
  CHECK(s.policy.rate_limit.burst == 10);
  CHECK_FALSE(s.policy.empty());
  CHECK(parse_ok(body()).policy.empty());
  CHECK(parse_ok(to_json(s)) == s);
  auto whole_rate = parse_ok(body(R"(,"policy":{"rate_limit":{"rate":3,"burst":3}})"));
  CHECK(to_json(whole_rate).find(R"("rate_limit":{"rate":3,"burst":3})")
        != std::string::npos);
}

TEST_CASE("cursors carry over only to a definition that syncs the same",
          "[sync]") {
  auto base = parse_ok(body());
  for (auto same : {R"(,"direction":"both","mode":"negentropy")",
                    R"(,"enabled":false,"overlap_window_seconds":60)",
                    R"(,"follow_deletions":false,"auth":{"type":"nip42","mode":"never"})",
                    R"(,"policy":{"rate_limit":{"rate":3,"burst":3}})"}) {
    CAPTURE(same);
    CHECK(keeps_cursors(base, parse_ok(body(same))));
  }
  auto other_filters = parse_ok(
    R"({"id":"s1","url":"wss://relay.example.com","filters":[{"kinds":[1,7]}]})");
  auto other_url = parse_ok(body({}, "wss://other.example.com"));
  auto other_rules = parse_ok(body(R"(,"policy":{"denied_kinds":[7]})"));
  for (const auto& other : {other_filters, other_url, other_rules}) {
    CAPTURE(to_json(other));
    CHECK_FALSE(keeps_cursors(base, other));
    CHECK_FALSE(keeps_cursors(other, base));
  }
}

TEST_CASE("enum names round-trip", "[sync]") {
  for (auto x : {sync_direction::down, sync_direction::up, sync_direction::both}) {
    sync_direction y{};
    CHECK((from_string(to_string(x), y) && y == x));
  }
  for (auto x : {sync_mode::req_stream, sync_mode::negentropy}) {
    sync_mode y{};
    CHECK((from_string(to_string(x), y) && y == x));
  }
  for (auto x : {relay_info_mode::required, relay_info_mode::best_effort,
                 relay_info_mode::disabled}) {
    relay_info_mode y{};
    CHECK((from_string(to_string(x), y) && y == x));
  }
  for (auto x : {auth_mode::on_challenge, auth_mode::always, auth_mode::never}) {
    auth_mode y{};
    CHECK((from_string(to_string(x), y) && y == x));
  }
  sync_direction d{};
  CHECK_FALSE(from_string("Down", d));
  auth_mode a{};
  CHECK_FALSE(from_string("", a));
}

TEST_CASE("a pin decodes from hex or base64", "[sync]") {
  nostr::bytes32 expected{};
  REQUIRE(nostr::from_hex(
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", expected));
  CHECK(pin_digest({"spki_sha256",
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"})
        == expected);
  CHECK(pin_digest({"spki_sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="})
        == expected);
  CHECK_FALSE(pin_digest({"sha1", std::string(64, 'a')}));
  CHECK_FALSE(pin_digest({"spki_sha256", "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="}));
}

TEST_CASE("runtime state round-trips through JSON", "[sync]") {
  sync_runtime_state fresh;
  CHECK(to_json(fresh)
        == R"({"received":0,"accepted":0,)"
           R"("duplicate":0,"rejected":0,"filtered":0,"sent":0,"sent_ok":0,)"
           R"("sent_refused":0,"echoes_skipped":0,"up_cursor":0,"up_era":0,)"
           R"("refused":0,"neg_need_refused":0,)"
           R"("last_connected":0,"disconnected_at":0,"last_catchup_completed":0,)"
           R"("last_error":""})");
  auto parsed = parse_sync_runtime(to_json(fresh));
  REQUIRE(parsed);
  CHECK(*parsed == fresh);

  sync_runtime_state st;
  st.received = 10;
  st.accepted = 7;
  st.duplicate = 2;
  st.rejected = 1;
  st.filtered = 3;
  st.sent = UINT64_MAX;
  st.sent_ok = 4;
  st.sent_refused = 5;
  st.echoes_skipped = 6;
  st.up_cursor = 123456789;
  st.up_era = UINT64_MAX - 1;
  st.refused = 8;
  st.neg_need_refused = 9;
  st.last_connected = 11;
  st.disconnected_at = 12;
  st.last_catchup_completed = 13;
  st.last_error = "connect: \"refused\"\n";
  auto back = parse_sync_runtime(to_json(st));
  REQUIRE(back);
  CHECK(*back == st);
  CHECK(back->sent == UINT64_MAX);
  CHECK(back->up_cursor == 123456789);
  CHECK(back->up_era == UINT64_MAX - 1);
  CHECK(back->refused == 8);
  CHECK(back->neg_need_refused == 9);
  CHECK(back->last_error == st.last_error);
}

TEST_CASE("runtime state tolerates missing and unknown keys, not wrong types",
          "[sync]") {
  auto partial = parse_sync_runtime(R"({"received":4,"future_key":true})");
  REQUIRE(partial);
  CHECK(partial->received == 4);
  CHECK(partial->accepted == 0);
  CHECK_FALSE(parse_sync_runtime(R"({"received":-1})"));
  CHECK_FALSE(parse_sync_runtime(R"({"last_error":3})"));
  CHECK_FALSE(parse_sync_runtime("[]"));
  CHECK_FALSE(parse_sync_runtime("{"));
}
