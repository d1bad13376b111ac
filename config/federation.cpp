// The `[federation]` section: this node's links with other operators' nodes.
// Peer tables go through the admin API's own validator, so the file and
// `PUT /api/v1/federation/peers/NAME` accept exactly the same shape; a
// password is hashed as it is read and never kept.

#include "config/readers.hpp"

#include "messages/error.hpp"
#include "messages/json_body.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace ferry::config::readers {

namespace {

template <class E>
leaf_reader choice(E& out, std::string what) {
  return [&out, what = std::move(what)](const toml::node& node,
                                        const std::string& path) -> problem {
    auto text = node.as_string();
    if (!text || !from_string(text->get(), out))
      return mismatch(path, what, node);
    return std::nullopt;
  };
}

/// Each table as JSON, in order; `what` names the table kind.
problem tables_as_json(const toml::node& node, const std::string& path,
                       std::string_view what,
                       std::vector<boost::json::value>& out) {
  auto list = node.as_array();
  if (!list)
    return mismatch(path, "an array of tables ([[" + std::string{what} + "]])",
                    node);
  for (size_t i = 0; i < list->size(); ++i) {
    auto item_path = path + "[" + std::to_string(i) + "]";
    const auto& entry = *list->get(i);
    if (!entry.is_table())
      return mismatch(item_path, "a table", entry);
    if (auto failure = to_json_value(entry, item_path, out.emplace_back()))
      return failure;
  }
  return std::nullopt;
}

leaf_reader peers(std::vector<peer_definition>& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    std::vector<boost::json::value> tables;
    if (auto failure = tables_as_json(node, path, "federation.peer", tables))
      return failure;
    std::vector<peer_definition> result;
    for (size_t i = 0; i < tables.size(); ++i) {
      auto item_path = path + "[" + std::to_string(i) + "]";
      auto def = parse_peer_definition(boost::json::serialize(tables[i]));
      if (!def)
        return item_path + "." + ferry::render(def.error());
      auto same = std::find_if(result.begin(), result.end(),
                               [&def](const peer_definition& other) {
                                 return other.name == def->name;
                               });
      if (same != result.end())
        return item_path + ".name: duplicate name " + toml_quote(def->name)
               + ", also in " + path + "["
               + std::to_string(same - result.begin()) + "]";
      result.push_back(std::move(*def));
    }
    out = std::move(result);
    return std::nullopt;
  };
}

leaf_reader collections(std::vector<collection_definition>& out) {
  return [&out](const toml::node& node, const std::string& path) -> problem {
    std::vector<boost::json::value> tables;
    if (auto failure
        = tables_as_json(node, path, "federation.collection", tables))
      return failure;
    std::vector<collection_definition> result;
    for (size_t i = 0; i < tables.size(); ++i) {
      auto item_path = path + "[" + std::to_string(i) + "]";
      const auto& obj = tables[i].as_object();
      if (auto failure
          = json_body::unknown_keys(obj, item_path, {"name", "filters"});
          !failure.empty())
        return failure;
      collection_definition c;
      auto name = obj.if_contains("name");
      if (!name || !name->is_string() || !is_peer_name(name->get_string()))
        return item_path
               + ".name: expected 1 to 48 characters of a-z, 0-9, '.', '_' "
                 "or '-', starting with a letter or digit";
      c.name = std::string{name->get_string()};
      auto filters = obj.if_contains("filters");
      if (!filters)
        return item_path + ".filters: required";
      if (auto failure = json_body::read_filters(
            *filters, item_path + ".filters", c.filters);
          !failure.empty())
        return failure;
      if (std::any_of(result.begin(), result.end(),
                      [&c](const auto& other) { return other.name == c.name; }))
        return item_path + ".name: duplicate name " + toml_quote(c.name);
      result.push_back(std::move(c));
    }
    out = std::move(result);
    return std::nullopt;
  };
}

/// `password` is hashed on the spot, so the clear text lives no longer than
/// this read; empty means unset.
leaf_reader password(std::string& hash_out) {
  return [&hash_out](const toml::node& node,
                     const std::string& path) -> problem {
    auto text = node.as_string();
    if (!text)
      return mismatch(path, "a string", node);
    if (!text->get().empty())
      hash_out = hash_password(text->get());
    return std::nullopt;
  };
}

bool is_set(const toml::table& table, std::string_view key) {
  auto node = table.get(key);
  return node && node->is_string() && !node->as_string()->get().empty();
}

/// A password for `require_password`, not both forms of it, and peers
/// whose collections exist.
section_rule federation_rules(const federation_config& fed) {
  return [&fed](const toml::table& table, const std::string& path) -> problem {
    if (is_set(table, "password") && is_set(table, "password_hash"))
      return child_path(path, "password_hash")
             + ": expected either password or password_hash, not both";
    if (fed.incoming == incoming_policy::require_password
        && fed.password_hash.empty())
      return child_path(path, "password")
             + ": expected a password (or password_hash) when "
               "federation.incoming = \"require_password\"";
    for (size_t i = 0; i < fed.peers.size(); ++i)
      for (const auto& name : fed.peers[i].collections)
        if (std::none_of(fed.collections.begin(), fed.collections.end(),
                         [&name](const auto& c) { return c.name == name; }))
          return child_path(path, "peer") + "[" + std::to_string(i)
                 + "].collections: expected names of [[federation.collection]] "
                   "tables, got "
                 + toml_quote(name);
    return std::nullopt;
  };
}

} // namespace

field federation_section(federation_config& fed) {
  return section(
    "federation",
    {
      leaf("enabled", boolean(fed.enabled)),
      leaf("name", string_if(fed.name,
                             "1 to 48 characters of a-z, 0-9, '.', '_' or "
                             "'-', or an empty string",
                             [](const std::string& name) {
                               return name.empty() || is_peer_name(name);
                             })),
      leaf("public_admin_url",
           string_if(fed.public_admin_url,
                     "an http:// or https:// URL of this node's admin API as "
                     "peers reach it (scheme, host and port only), or an "
                     "empty string",
                     [](const std::string& url) {
                       return url.empty() || is_admin_url(url);
                     })),
      leaf("mode", choice(fed.mode, "one of \"sync\", \"publish\", "
                                    "\"subscribe\"")),
      leaf("interval_seconds", seconds(fed.interval)),
      leaf("incoming",
           choice(fed.incoming, "one of \"auto_accept\", \"require_approval\", "
                                "\"require_password\", \"deny\"")),
      leaf("max_pending_links",
           integer(fed.max_pending_links, 1, 1000000,
                   "an integer in 1..1000000")),
      leaf("max_incoming_links",
           integer(fed.max_incoming_links, 1, 1000000,
                   "an integer in 1..1000000")),
      leaf("password", password(fed.password_hash)),
      leaf("password_hash",
           string_if(fed.password_hash,
                     "a hash as \"pbkdf2-sha256$<iterations>$<salt hex>$<64 "
                     "hex>\", or an empty string",
                     [](const std::string& hash) {
                       return hash.empty() || is_password_hash(hash);
                     })),
      leaf("peer", peers(fed.peers)),
      leaf("collection", collections(fed.collections)),
    },
    federation_rules(fed));
}

} // namespace ferry::config::readers
