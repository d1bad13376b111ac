#include "actors/runtime/owed_answers.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

using namespace ferry;

namespace {

/// Stands for a response promise: open until paid.
struct owed {
  int id = 0;
  bool paid = false;

  bool pending() const {
    return !paid;
  }
};

} // namespace

TEST_CASE("owed answers: each still open is paid once, the paid are not",
          "[owed_answers]") {
  owed_answers<owed> answers;
  auto first = answers.owe({1});
  auto second = answers.owe({2});
  auto third = answers.owe({3});
  second->paid = true;
  std::vector<int> paid;
  answers.pay_all([&](owed& x) {
    paid.push_back(x.id);
    x.paid = true;
  });
  CHECK(paid == std::vector<int>{1, 3});
  CHECK(answers.held() == 0);
  paid.clear();
  answers.pay_all([&](owed& x) { paid.push_back(x.id); });
  CHECK(paid.empty());
}

TEST_CASE("owed answers: what was paid is let go, so a long stream of "
          "requests holds no more than twice those open",
          "[owed_answers]") {
  // An actor owes one answer per event for as long as it runs.
  owed_answers<owed> answers;
  std::vector<std::shared_ptr<owed>> open;
  size_t most_held = 0;
  for (int i = 0; i < 100'000; ++i) {
    auto x = answers.owe({i});
    // Every tenth stays open; the others are answered at once.
    if (i % 10 == 0)
      open.push_back(x);
    else
      x->paid = true;
    // Open ones are answered in their turn, a hundred behind.
    if (open.size() > 100) {
      open.front()->paid = true;
      open.erase(open.begin());
    }
    most_held = std::max(most_held, answers.held());
  }
  CHECK(most_held <= 2 * 101 + 1);
  size_t still_open = 0;
  answers.pay_all([&](owed&) { ++still_open; });
  CHECK(still_open == open.size());
}
