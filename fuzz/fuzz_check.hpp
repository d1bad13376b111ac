#pragma once

// Shared by the fuzzers: each is one libFuzzer target, LLVMFuzzerTestOneInput.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace ferry::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// A broken invariant is a finding like a crash: say which, and abort so
/// libFuzzer keeps the input.
inline void require(bool holds, const char* invariant) {
  if (holds)
    return;
  std::fprintf(stderr, "fuzz: invariant broken: %s\n", invariant);
  std::abort();
}

} // namespace ferry::fuzz
