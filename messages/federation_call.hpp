#pragma once

// One admin API request for the FEDERATION MANAGER and its answer; apart
// from messages/federation.hpp so the INSPECTOR's interface can forward the
// console's federation commands without including the whole federation.

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>

namespace ferry {

/// One admin API request the FEDERATION MANAGER answers: an operator's (the
/// routes under /api/v1/federation/peers, or the console) or a peer's
/// (NIP-98 signed by its node key).
struct federation_call {
  /// "status", "register", "mirror", "verify", "unlink" (a peer's);
  /// "list", "get", "put", "delete", "reset", "pause", "resume", "approve",
  /// "set_status" (an operator's).
  std::string op;
  /// The peer NAME in the path; empty when the path has none.
  std::string name;
  std::string body;
  /// The verified NIP-98 signer (a peer's calls only).
  std::string caller;
  /// The caller's Authorization header and the URL it signed: the answer
  /// carries our signature over them as proof of our identity.
  std::string authorization;
  std::string url;
  std::string method;
  /// The request's query string without the '?' ("" when none).
  std::string query;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, federation_call& x) {
  return f(caf::meta::type_name("federation_call"), x.op, x.name, x.body,
           x.caller, x.authorization, x.url, x.method, x.query);
}

/// Its answer: an HTTP status and a JSON body.
struct federation_reply {
  uint32_t status = 200;
  std::string body;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, federation_reply& x) {
  return f(caf::meta::type_name("federation_reply"), x.status, x.body);
}

} // namespace ferry
