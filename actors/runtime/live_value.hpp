#pragma once

#include <atomic>
#include <memory>
#include <utility>

namespace ferry {

/// A value that a config reload replaces while actors on other threads read
/// it: each read takes the current snapshot, which stays valid as long as
/// the reader holds it. Readers that derive state from it compare snapshot
/// pointers to see that it changed.
template <class T>
class live_value {
public:
  explicit live_value(T initial = {})
      : current_(std::make_shared<const T>(std::move(initial))) {
    // nop
  }

  std::shared_ptr<const T> get() const {
    return std::atomic_load(&current_);
  }

  void set(T next) {
    std::atomic_store(&current_, std::make_shared<const T>(std::move(next)));
  }

private:
  std::shared_ptr<const T> current_;
};

template <class T>
using live_value_ptr = std::shared_ptr<live_value<T>>;

} // namespace ferry
