#pragma once

#include <string_view>

namespace ferry {

/// Equality of a presented secret and the configured one, in time independent
/// of where they differ and of their lengths: both are hashed (SHA-256)
/// first and the digests compared in constant time. For the admin token and
/// the console secret.
bool secret_equal(std::string_view given, std::string_view expected);

} // namespace ferry
