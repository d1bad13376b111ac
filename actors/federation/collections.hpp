#pragma once

// What the FEDERATION MANAGER serves of its collections: their size, a page
// of their events, and the parameters of a preview and of a pull as a peer
// or an operator sends them.

#include "messages/federation.hpp"
#include "store/event_store.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

/// An error answer: `{"error": {"code", "message", "field"}}`, the field
/// only when one is at fault.
federation_reply federation_error(uint32_t status, const std::string& message,
                                  const std::string& field = {});

/// The most events one preview returns.
constexpr uint64_t max_preview_events = 100;

/// The deepest a preview pages: each page holds up to offset + limit events
/// per filter in memory, and a peer wanting more pulls.
constexpr uint64_t max_preview_offset = 10'000;

/// The distinct events of a collection and the bytes of their JSON.
struct collection_size {
  uint64_t events = 0;
  uint64_t bytes = 0;
};

/// Counts by scanning the store with each filter (no index-only count can
/// sum bytes): linear in the collection's size.
collection_size measure_collection(const store::event_store& store,
                                   const std::vector<nostr::filter>& filters,
                                   int64_t now);

/// `GET .../collections/NAME/events?limit&offset&ids&since&until`.
struct preview_query {
  uint64_t limit = 20;
  uint64_t offset = 0;
  /// Comma-separated event ids.
  std::optional<std::vector<nostr::bytes32>> ids;
  std::optional<int64_t> since;
  std::optional<int64_t> until;
};

/// Parses the raw query string. @returns an `ec::invalid_input` error whose
/// text starts with the parameter at fault ("limit: expected 1 to 100").
caf::expected<preview_query> parse_preview_query(std::string_view query);

/// The JSON of the collection's events the query selects, newest first
/// (ties: lower id first), distinct across the filters.
std::vector<std::string>
preview_collection(const store::event_store& store,
                   const std::vector<nostr::filter>& filters,
                   const preview_query& query, int64_t now);

/// How a pull settles a replaceable or addressable event we hold a version
/// of.
enum class conflict_strategy : uint8_t {
  /// Keep ours.
  skip,
  /// NIP-01: the newest version wins (the normal ingest rule).
  merge,
  /// Take theirs, even when it is older than ours.
  overwrite,
};

std::string to_string(conflict_strategy x);

/// `POST /api/v1/federation/peers/NAME/pull`.
struct pull_request {
  std::string collection;
  conflict_strategy strategy = conflict_strategy::merge;
};

/// Parses a pull body (the collection is the peer's, so only its form is
/// checked here). `overwrite` is refused: the store's write path has no way
/// to replace a newer version with an older one. @returns an
/// `ec::invalid_input` error whose text starts with the field at fault.
caf::expected<pull_request> parse_pull_request(std::string_view body);

} // namespace ferry
