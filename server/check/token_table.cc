#include "server/check/token_table.h"

#include <algorithm>
#include <cstring>

namespace warden::server {

namespace {

std::string_view IdOf(const TokenTable::Entry& e) { return std::string_view(e.id.data(), e.id.size()); }

}  // namespace

size_t TokenTable::Home(std::string_view id) const {
  // Token ids are random base62: any mix of their bytes spreads them. kTokenIdLen is 10.
  uint64_t a = 0;
  uint16_t b = 0;
  std::memcpy(&a, id.data(), 8);
  std::memcpy(&b, id.data() + 8, 2);
  const uint64_t h = (a ^ (uint64_t{b} << 47) ^ (uint64_t{b} >> 3)) * 0x9E3779B97F4A7C15ull;
  return static_cast<size_t>(h >> 32) & (slots_.size() - 1);
}

size_t TokenTable::Probe(std::string_view id) const {
  const size_t mask = slots_.size() - 1;
  for (size_t s = Home(id);; s = (s + 1) & mask) {
    const uint32_t v = slots_[s];
    if (v == kEmpty || IdOf(At(v - 1)) == id) return s;
  }
}

const TokenTable::Entry* TokenTable::Find(std::string_view id) const {
  if (id.size() != kTokenIdLen || size_ == 0) return nullptr;
  const uint32_t v = slots_[Probe(id)];
  return v == kEmpty ? nullptr : &At(v - 1);
}

TokenTable::Entry* TokenTable::Find(std::string_view id) {
  return const_cast<Entry*>(static_cast<const TokenTable*>(this)->Find(id));
}

std::pair<TokenTable::Entry*, bool> TokenTable::Insert(std::string_view id) {
  if (id.size() != kTokenIdLen) return {nullptr, false};
  if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
  const size_t s = Probe(id);
  if (slots_[s] != kEmpty) return {&At(slots_[s] - 1), false};
  const uint32_t index = static_cast<uint32_t>(size_);
  if ((index >> kBlockBits) == blocks_.size()) blocks_.push_back(std::make_unique<Block>());
  Entry& e = At(index);
  e = Entry();
  std::copy(id.begin(), id.end(), e.id.begin());
  slots_[s] = index + 1;
  ++size_;
  return {&e, true};
}

void TokenTable::Grow() {
  std::vector<uint32_t> old = std::move(slots_);
  slots_.assign(std::max<size_t>(64, old.size() * 2), kEmpty);
  const size_t mask = slots_.size() - 1;
  for (uint32_t v : old) {
    if (v == kEmpty) continue;
    size_t s = Home(IdOf(At(v - 1)));
    while (slots_[s] != kEmpty) s = (s + 1) & mask;
    slots_[s] = v;
  }
}

void TokenTable::EraseAt(size_t slot) {
  const size_t mask = slots_.size() - 1;
  const uint32_t index = slots_[slot] - 1;
  // Backward-shift deletion: later entries of the probe run move up into the hole when their
  // home does not lie (cyclically) after it, so every entry stays reachable from its home.
  size_t hole = slot;
  for (size_t s = (slot + 1) & mask; slots_[s] != kEmpty; s = (s + 1) & mask) {
    const size_t home = Home(IdOf(At(slots_[s] - 1)));
    const bool home_after_hole = hole <= s ? (home > hole && home <= s) : (home > hole || home <= s);
    if (!home_after_hole) {
      slots_[hole] = slots_[s];
      hole = s;
    }
  }
  slots_[hole] = kEmpty;
  // The last entry takes the erased one's place.
  const uint32_t last = static_cast<uint32_t>(size_ - 1);
  if (index != last) {
    slots_[Probe(IdOf(At(last)))] = index + 1;
    At(index) = std::move(At(last));
  }
  At(last) = Entry();  // drops its account reference now
  --size_;
}

bool TokenTable::Erase(std::string_view id) {
  if (id.size() != kTokenIdLen || size_ == 0) return false;
  const size_t s = Probe(id);
  if (slots_[s] == kEmpty) return false;
  EraseAt(s);
  return true;
}

void TokenTable::EraseIf(const std::function<bool(const Entry&)>& pred) {
  // From the end: an erased entry's place is taken by the last one, already visited.
  for (size_t i = size_; i-- > 0;) {
    if (pred(At(static_cast<uint32_t>(i)))) EraseAt(Probe(IdOf(At(static_cast<uint32_t>(i)))));
  }
}

void TokenTable::Clear() {
  blocks_.clear();
  slots_.clear();
  size_ = 0;
}

size_t TokenTable::MemoryBytes() const {
  return blocks_.size() * sizeof(Block) + slots_.capacity() * sizeof(uint32_t);
}

}  // namespace warden::server
