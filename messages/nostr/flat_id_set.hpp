#pragma once

#include "messages/nostr/hex.hpp"
#include "messages/nostr/id_hash.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ferry::nostr {

/// A set of event ids in one flat array (open addressing, linear probing,
/// at most half full). A query remembers every id it sent; as nodes of a
/// std::unordered_set each id was an allocation, and the 100k nodes a big
/// query freed made the next query's first sizeable allocation wait
/// milliseconds while glibc consolidated them.
///
/// Ids are checked hashes, but an author can grind them: a few hundred
/// thousand tries give an id any 20 chosen bits. Where ids start probing
/// is therefore not their own bits but their seeded `hash_id`: ids ground
/// to one slot would otherwise make every query that sends them probe
/// quadratically.
class flat_id_set {
public:
  bool empty() const {
    return size_ == 0;
  }

  size_t size() const {
    return size_;
  }

  /// Room for `n` ids without growing.
  void reserve(size_t n) {
    if (n > capacity())
      rehash(slots_for(n));
  }

  /// @returns true when `id` was not in the set.
  bool insert(const bytes32& id) {
    if (id == bytes32{}) {
      // The all-zero id marks an empty slot, so it is kept apart.
      if (has_zero_)
        return false;
      has_zero_ = true;
      ++size_;
      return true;
    }
    if (size_ + 1 > capacity())
      rehash(slots_for(size_ + 1));
    auto& slot = slots_[find_slot(id)];
    if (slot == id)
      return false;
    slot = id;
    ++size_;
    return true;
  }

  /// The slot where the probe for `id` starts (0 while the set has no
  /// slots).
  size_t home_slot(const bytes32& id) const {
    if (slots_.empty())
      return 0;
    // The hash's top bits pick the slot.
    return static_cast<size_t>(hash_id(id) >> shift_);
  }

  bool contains(const bytes32& id) const {
    if (id == bytes32{})
      return has_zero_;
    if (slots_.empty())
      return false;
    return slots_[find_slot(id)] == id;
  }

private:
  static constexpr size_t min_slots = 16;

  /// Ids the slots hold before the set grows: half of them.
  size_t capacity() const {
    return slots_.size() / 2;
  }

  static size_t slots_for(size_t ids) {
    size_t slots = min_slots;
    while (slots / 2 < ids)
      slots *= 2;
    return slots;
  }

  /// The slot holding `id`, or the empty slot where it belongs.
  size_t find_slot(const bytes32& id) const {
    const size_t mask = slots_.size() - 1;
    for (size_t i = home_slot(id);; i = (i + 1) & mask)
      if (slots_[i] == id || slots_[i] == bytes32{})
        return i;
  }

  void rehash(size_t slots) {
    std::vector<bytes32> old(slots, bytes32{});
    old.swap(slots_);
    shift_ = 64;
    for (size_t n = slots; n > 1; n /= 2)
      --shift_;
    for (const auto& id : old)
      if (id != bytes32{})
        slots_[find_slot(id)] = id;
  }

  std::vector<bytes32> slots_;
  /// 64 - log2(slots): home slots are the product's top bits.
  unsigned shift_ = 64;
  size_t size_ = 0;
  bool has_zero_ = false;
};

} // namespace ferry::nostr
