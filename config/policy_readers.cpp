#include "config/policy_readers.hpp"

#include "messages/nostr/bech32.hpp"
#include "messages/nostr/hex.hpp"

#include <cmath>
#include <utility>

namespace ferry::config::readers {

namespace {

/// Operators copy pubkeys from clients, which show npubs: both forms are
/// accepted and kept as hex.
leaf_reader pubkeys_or_npubs(std::vector<std::string>& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    constexpr std::string_view what
      = "64 lowercase hex characters or an npub1... key";
    auto list = node.as_array();
    if (!list)
      return mismatch(path, "an array of pubkeys (hex or npub)", node);
    std::vector<std::string> result;
    for (size_t i = 0; i < list->size(); ++i) {
      auto item_path = path + "[" + std::to_string(i) + "]";
      const auto& item = *list->get(i);
      auto text = item.as_string();
      if (!text)
        return mismatch(item_path, what, item);
      const auto& value = text->get();
      if (auto key = nostr::from_npub(value)) {
        result.push_back(nostr::to_hex(*key));
        continue;
      }
      std::string hex;
      if (auto failure = pubkey(hex)(item, item_path))
        return mismatch(item_path, what, item);
      if (hex.empty())
        return mismatch(item_path, what, item);
      result.push_back(std::move(hex));
    }
    out = std::move(result);
    return std::nullopt;
  };
}

leaf_reader kinds(std::vector<int64_t>& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    constexpr std::string_view what = "an event kind, an integer in 0..65535";
    auto list = node.as_array();
    if (!list)
      return mismatch(path, "an array of event kinds (integers in 0..65535)",
                      node);
    std::vector<int64_t> result;
    for (size_t i = 0; i < list->size(); ++i) {
      int64_t kind = 0;
      auto item_path = path + "[" + std::to_string(i) + "]";
      if (auto failure
          = integer(kind, 0, 65535, std::string{what})(*list->get(i), item_path))
        return failure;
      result.push_back(kind);
    }
    out = std::move(result);
    return std::nullopt;
  };
}

/// Events per second: a TOML float or integer, at least 0.
leaf_reader rate(double& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    constexpr std::string_view what
      = "events per second, a number of at least 0 (0: no limit)";
    double value = 0;
    if (auto number = node.as_floating_point())
      value = number->get();
    else if (auto whole = node.as_integer())
      value = static_cast<double>(whole->get());
    else
      return mismatch(path, what, node);
    if (!std::isfinite(value) || value < 0)
      return mismatch(path, what, node);
    out = value;
    return std::nullopt;
  };
}

field rate_limit(std::string_view key, rate_limit_config& out) {
  return section(key,
                 {
                   leaf("rate", rate(out.rate)),
                   leaf("burst", integer(out.burst, 0, max_int64,
                                         "a non-negative integer")),
                 },
                 [&out](const toml::table&,
                        const std::string& path) -> problem {
                   // A bucket that holds nothing would refuse every event.
                   if (out.enabled() && out.burst < 1)
                     return path + ".burst: expected at least 1 when "
                            + path + ".rate is set, got "
                            + std::to_string(out.burst);
                   return std::nullopt;
                 });
}

leaf_reader non_negative(int64_t& out, int64_t max) {
  return integer(out, 0, max,
                 "an integer in 0.." + std::to_string(max) + " (0: no limit)");
}

} // namespace

field policy_section(policy_config& out) {
  return section(
    "policy",
    {
      leaf("allowed_pubkeys", pubkeys_or_npubs(out.allowed_pubkeys)),
      leaf("denied_pubkeys", pubkeys_or_npubs(out.denied_pubkeys)),
      leaf("allowed_kinds", kinds(out.allowed_kinds)),
      leaf("denied_kinds", kinds(out.denied_kinds)),
      leaf("max_content_bytes", non_negative(out.max_content_bytes, max_int64)),
      leaf("max_tags", non_negative(out.max_tags, max_int64)),
      leaf("max_age_seconds", non_negative(out.max_age_seconds, max_seconds)),
      leaf("max_future_seconds",
           non_negative(out.max_future_seconds, max_seconds)),
      leaf("auth_required_for_writes", boolean(out.auth_required_for_writes)),
      section("rate_limit",
              {
                rate_limit("ip", out.rate_ip),
                rate_limit("pubkey", out.rate_pubkey),
                rate_limit("source", out.rate_source),
              }),
      section("remember_refused",
              {
                leaf("max_entries",
                     integer(out.remember_refused.max_entries, 0, max_int64,
                             "a non-negative integer (0: remember nothing)")),
                leaf("ttl_seconds", seconds(out.remember_refused.ttl)),
              }),
      section("plugin",
              {
                leaf("command", text(out.plugin.command)),
                leaf("timeout_ms",
                     integer(out.plugin.timeout, 1, 600000,
                             "an integer in 1..600000")),
                leaf("fallback",
                     string_if(out.plugin.fallback, "\"accept\" or \"reject\"",
                               [](const std::string& value) {
                                 return value == "accept" || value == "reject";
                               })),
              }),
    });
}

} // namespace ferry::config::readers
