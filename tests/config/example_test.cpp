#include "config/config.hpp"

#include "config_test_util.hpp"
#include "tests/fixtures/paths.hpp"

#include <catch2/catch.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

using namespace ferry::config;
using ferry::config::test::error_text;

namespace {

const std::string example_path = ferry::test::source_dir() + "/config/ferry.example.toml";

void collect_leaves(const toml::table& table, const std::string& prefix,
                    std::vector<std::string>& out) {
  for (auto&& [key, value] : table) {
    auto path = prefix.empty() ? std::string{key.str()}
                               : prefix + "." + std::string{key.str()};
    // An inline table is one value (infra.roles = {}), a [section] is not.
    if (auto child = value.as_table(); child && !child->is_inline())
      collect_leaves(*child, path, out);
    else
      out.push_back(path);
  }
}

} // namespace

// The example file is the operator's reference: these tests keep it complete
// and its values equal to the real defaults.

TEST_CASE("the example file loads to exactly the defaults", "[config]") {
  auto result = load_file(example_path);
  if (!result)
    FAIL(error_text(result.error()));
  auto expected = config{};
  expected.source = example_path;
  CHECK(*result == expected);
}

TEST_CASE("the example file sets every key the parser accepts", "[config]") {
  std::vector<std::string> in_example;
  collect_leaves(toml::parse_file(example_path), "", in_example);
  auto accepted = key_paths();
  std::sort(in_example.begin(), in_example.end());
  std::sort(accepted.begin(), accepted.end());
  CHECK(in_example == accepted);
}

TEST_CASE("every key in the example file has a comment above it", "[config]") {
  std::ifstream in{example_path};
  REQUIRE(in);
  std::string previous;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    bool is_key = !line.empty() && line[0] != '#' && line[0] != '['
                  && line.find(" = ") != std::string::npos;
    if (is_key) {
      INFO("line " << number << ": " << line);
      CHECK(previous.rfind("#", 0) == 0);
    }
    previous = line;
  }
}

TEST_CASE("the commented sync server example loads once uncommented",
          "[config]") {
  std::ifstream in{example_path};
  REQUIRE(in);
  std::string line;
  while (std::getline(in, line) && line != "server = []") {
  }
  // What an operator does: drop `server = []`, uncomment the example.
  std::string uncommented;
  while (std::getline(in, line)) {
    REQUIRE(line.rfind("#", 0) == 0);
    uncommented += line.size() > 1 ? line.substr(2) : std::string{};
    uncommented += '\n';
  }
  auto result = load_string(uncommented, "example");
  if (!result)
    FAIL(error_text(result.error()));
  REQUIRE(result->sync.servers.size() == 1);
  CHECK(result->sync.servers[0].id == "example");
}
