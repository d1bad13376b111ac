// Fuzzes the admin API's JSON bodies (sync server definitions, hosted relays
// and their merge patches) and the records the store reads back: any text
// gives a value or a field-naming error, and what a reader accepts
// serializes to a text it reads back the same.

#include "fuzz/fuzz_check.hpp"
#include "messages/hosted_relay.hpp"
#include "messages/json_body.hpp"
#include "messages/sync.hpp"

using namespace ferry;

namespace {

const hosted_relay& sample_relay() {
  static const hosted_relay relay = [] {
    auto parsed = parse_hosted_relay(
      R"({"id":"r1","subdomain":"team","schema":"team_1","info":{"name":"Team",)"
      R"("pubkey":"35d26e4690cbe1a898af61cc3515661eb5fa763b57bd0b42e45099c8b32fd50f"},)"
      R"("policy":{"open":true},"blossom_enabled":true})");
    fuzz::require(static_cast<bool>(parsed), "the sample relay parses");
    return *parsed;
  }();
  return relay;
}

void sync_server_body(std::string_view text) {
  auto server = parse_sync_server(text);
  if (!server)
    return;
  auto json = to_json(*server);
  auto again = parse_sync_server(json);
  fuzz::require(static_cast<bool>(again), "a sync server's JSON parses");
  fuzz::require(to_json(*again) == json, "sync server JSON is a fixpoint");
}

void hosted_relay_body(std::string_view text) {
  auto relay = parse_hosted_relay(text, "r1");
  if (!relay)
    return;
  auto json = to_json(*relay);
  auto stored = parse_stored_hosted_relay(json);
  fuzz::require(static_cast<bool>(stored), "a stored hosted relay reads back");
  fuzz::require(to_json(*stored) == json, "hosted relay JSON is a fixpoint");
}

void hosted_relay_patch(std::string_view text) {
  auto patched = patch_hosted_relay(sample_relay(), text);
  if (!patched)
    return;
  fuzz::require(patched->id == sample_relay().id, "a patch keeps the id");
  auto json = to_json(*patched);
  auto stored = parse_stored_hosted_relay(json);
  fuzz::require(static_cast<bool>(stored), "a patched relay reads back");
  fuzz::require(to_json(*stored) == json, "patched relay JSON is a fixpoint");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = fuzz::as_text(data, size);
  sync_server_body(text);
  hosted_relay_body(text);
  hosted_relay_patch(text);
  (void) parse_stored_hosted_relay(text);
  (void) parse_activity_entry(text);
  (void) parse_sync_runtime(text);
  (void) json_body::duplicate_key(text);
  return 0;
}
