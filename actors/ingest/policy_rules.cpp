#include "actors/ingest/policy_rules.hpp"

#include <chrono>

#include <algorithm>

namespace ferry {

// -- token_buckets ------------------------------------------------------------

token_buckets::token_buckets(config::rate_limit_config cfg) : cfg_(cfg) {
  // nop
}

bool token_buckets::take(const std::string& key, double now) {
  if (!cfg_.enabled())
    return true;
  auto burst = static_cast<double>(cfg_.burst);
  auto [i, added] = buckets_.try_emplace(key, bucket{burst, now});
  auto& b = i->second;
  if (!added) {
    b.tokens = std::min(burst, b.tokens + (now - b.last) * cfg_.rate);
    b.last = now;
  }
  if (b.tokens < 1)
    return false;
  b.tokens -= 1;
  if (added && buckets_.size() > prune_above)
    prune(now);
  return true;
}

void token_buckets::prune(double now) {
  auto burst = static_cast<double>(cfg_.burst);
  for (auto i = buckets_.begin(); i != buckets_.end();) {
    if (i->second.tokens + (now - i->second.last) * cfg_.rate >= burst)
      i = buckets_.erase(i);
    else
      ++i;
  }
}

// -- policy_rules -------------------------------------------------------------

namespace {

std::set<nostr::bytes32> to_keys(const std::vector<std::string>& hex) {
  std::set<nostr::bytes32> result;
  for (const auto& text : hex) {
    nostr::bytes32 key;
    // The config reader let only valid keys through.
    if (nostr::from_hex(text, key))
      result.insert(key);
  }
  return result;
}

std::set<uint32_t> to_kinds(const std::vector<int64_t>& kinds) {
  std::set<uint32_t> result;
  for (auto kind : kinds)
    result.insert(static_cast<uint32_t>(kind));
  return result;
}

bool from_client(const ingest_item& item) {
  return item.source == "client";
}

} // namespace

double steady_seconds() {
  return std::chrono::duration<double>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

namespace {

/// How a refusal for a created_at too far ahead ends: time makes the event
/// acceptable, so it is a temporary refusal.
constexpr std::string_view in_the_future = " seconds in the future";

bool ends_with(std::string_view text, std::string_view end) {
  return text.size() >= end.size()
         && text.substr(text.size() - end.size()) == end;
}

} // namespace

bool is_temporary_refusal(std::string_view message) {
  return message.rfind("rate-limited:", 0) == 0
         || message.rfind("error:", 0) == 0
         || (message.rfind("blocked: created_at", 0) == 0
             && ends_with(message, in_the_future));
}

policy_rules::policy_rules(const config::policy_config& cfg)
  : cfg_(cfg),
    empty_(!cfg.has_rules()),
    allowed_pubkeys_(to_keys(cfg.allowed_pubkeys)),
    denied_pubkeys_(to_keys(cfg.denied_pubkeys)),
    allowed_kinds_(to_kinds(cfg.allowed_kinds)),
    denied_kinds_(to_kinds(cfg.denied_kinds)),
    per_ip_(cfg.rate_ip),
    per_pubkey_(cfg.rate_pubkey),
    per_source_(cfg.rate_source) {
  // nop
}

policy_verdict policy_rules::reject(std::string message) {
  ++counts_.rejected;
  return {policy_action::reject, std::move(message)};
}

policy_verdict policy_rules::rate_limited(const std::string& what) {
  ++counts_.rate_limited;
  return {policy_action::reject,
          "rate-limited: too many events from this " + what
            + "; slow down"};
}

policy_verdict policy_rules::judge(const ingest_item& item, int64_t now,
                                   double steady_now) {
  if (empty_)
    return {};
  const auto& ev = item.data.ev;
  if (cfg_.auth_required_for_writes && from_client(item)) {
    if (item.authed.empty())
      return reject("auth-required: publishing needs NIP-42 authentication");
    if (item.authed != nostr::to_hex(ev.pubkey))
      return reject("restricted: authenticate as the event's author to "
                    "publish it");
  }
  if (denied_pubkeys_.count(ev.pubkey) > 0)
    return reject("blocked: this pubkey may not write here");
  if (!allowed_pubkeys_.empty() && allowed_pubkeys_.count(ev.pubkey) == 0)
    return reject("blocked: this pubkey is not allowed to write here");
  if (denied_kinds_.count(ev.kind) > 0
      || (!allowed_kinds_.empty() && allowed_kinds_.count(ev.kind) == 0))
    return reject("blocked: kind " + std::to_string(ev.kind)
                  + " is not accepted here");
  if (cfg_.max_content_bytes > 0
      && ev.content.size() > static_cast<size_t>(cfg_.max_content_bytes))
    return reject("blocked: content is " + std::to_string(ev.content.size())
                  + " bytes, more than the "
                  + std::to_string(cfg_.max_content_bytes) + " allowed");
  if (cfg_.max_tags > 0 && ev.tags.size() > static_cast<size_t>(cfg_.max_tags))
    return reject("blocked: " + std::to_string(ev.tags.size())
                  + " tags, more than the " + std::to_string(cfg_.max_tags)
                  + " allowed");
  if (cfg_.max_age_seconds > 0 && ev.created_at < now - cfg_.max_age_seconds)
    return reject("blocked: created_at is more than "
                  + std::to_string(cfg_.max_age_seconds)
                  + " seconds in the past");
  if (cfg_.max_future_seconds > 0
      && ev.created_at > now + cfg_.max_future_seconds)
    return reject("blocked: created_at is more than "
                  + std::to_string(cfg_.max_future_seconds)
                  + std::string{in_the_future});
  // Buckets last: an event refused above takes no token.
  if (per_ip_.enabled() && from_client(item) && !item.source_info.empty()
      && !per_ip_.take(item.source_info, steady_now))
    return rate_limited("IP address");
  if (per_pubkey_.enabled()
      && !per_pubkey_.take(nostr::to_hex(ev.pubkey), steady_now))
    return rate_limited("pubkey");
  if (per_source_.enabled() && !per_source_.take(item.source, steady_now))
    return rate_limited("source");
  return {};
}

} // namespace ferry
