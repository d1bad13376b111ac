#pragma once

#include <string_view>

namespace ferry {

/// The status page served at GET /status on the admin port: one
/// self-contained HTML document (inline CSS and JavaScript, nothing loaded
/// from anywhere else). It holds no data; its script reads everything from
/// the authenticated JSON API with the admin token the operator gives it.
std::string_view status_page_html();

/// The Content-Security-Policy the page is served with: scripts and styles
/// only inline, requests only to the admin port itself, so the browser
/// refuses any outside resource too.
std::string_view status_page_security_policy();

} // namespace ferry
