// Fuzzes ferry.toml loading: any text gives a config or an error naming the
// key (never an exception or a crash), and loading is deterministic.

#include "config/config.hpp"
#include "fuzz/fuzz_check.hpp"

using namespace ferry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = fuzz::as_text(data, size);
  auto loaded = config::load_string(text, "fuzz.toml");
  if (!loaded) {
    fuzz::require(!to_string(loaded.error()).empty(), "an error says why");
    return 0;
  }
  auto again = config::load_string(text, "fuzz.toml");
  fuzz::require(again && *again == *loaded, "loading is deterministic");
  return 0;
}
