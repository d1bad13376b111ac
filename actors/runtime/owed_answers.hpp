#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

namespace ferry {

/// Answers an actor owes its requesters while it waits for another actor's.
///
/// CAF 0.17 drops a response promise silently when its actor ends (it has no
/// `broken_promise`), and the ingest path asks without a timeout: an answer
/// lost that way leaves a client's EVENT without an OK (and one of its
/// connection's in-flight frames taken for good), a relay connection's
/// cursor held below the batch, a pull that never ends. So an actor's state
/// keeps here what it owes and its destructor (CAF runs it as the actor ends:
/// a stop, a crash, the first half of a restart) answers what is still open.
///
/// The state must hold them itself: by then CAF has already dropped the
/// response handlers that would have paid them. `Owed` tells whether it is
/// still open with `pending()` (a response promise does).
template <class Owed>
class owed_answers {
public:
  /// Keeps `x` until it is paid; the response handlers share the pointer.
  std::shared_ptr<Owed> owe(Owed x) {
    if (owed_.size() >= prune_at_) {
      owed_.erase(std::remove_if(owed_.begin(), owed_.end(),
                                 [](const auto& x) { return !x->pending(); }),
                  owed_.end());
      // Amortized: one pass per as many new entries as were left open.
      prune_at_ = std::max(min_prune_at, 2 * owed_.size());
    }
    owed_.push_back(std::make_shared<Owed>(std::move(x)));
    return owed_.back();
  }

  /// Calls `pay` with each answer still open, then forgets them all.
  template <class Pay>
  void pay_all(Pay&& pay) {
    auto owed = std::move(owed_);
    owed_.clear();
    for (auto& x : owed)
      if (x->pending())
        pay(*x);
  }

  /// Entries held: the open ones and those paid since the last prune.
  size_t held() const {
    return owed_.size();
  }

private:
  static constexpr size_t min_prune_at = 64;
  std::vector<std::shared_ptr<Owed>> owed_;
  size_t prune_at_ = min_prune_at;
};

} // namespace ferry
