#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace ferry {

/// The current handle of a supervised actor. A restart gives the actor a new
/// handle; everyone who talks to it holds the slot, not the handle, so the
/// supervisor's `on_started` hook can swap it in one place.
template <class Handle>
class handle_slot {
public:
  handle_slot() = default;

  explicit handle_slot(Handle initial) : handle_(std::move(initial)) {
    // nop
  }

  /// The current incarnation (may be invalid while the actor restarts).
  Handle get() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return handle_;
  }

  void set(Handle x) {
    std::lock_guard<std::mutex> guard{mtx_};
    handle_ = std::move(x);
  }

private:
  mutable std::mutex mtx_;
  Handle handle_;
};

template <class Handle>
using handle_slot_ptr = std::shared_ptr<handle_slot<Handle>>;

/// The next handle among `slots` that holds a running incarnation, taken in
/// turn from `next` (which it advances); none when no slot holds one.
template <class Handle>
Handle next_running(const std::vector<handle_slot_ptr<Handle>>& slots,
                    size_t& next) {
  for (size_t tried = 0; tried < slots.size(); ++tried)
    if (auto handle = slots[next++ % slots.size()]->get())
      return handle;
  return {};
}

} // namespace ferry
