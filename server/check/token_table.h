// The token verifier's cache of verified tokens, keyed by the token id (kTokenIdLen base62
// characters): an open-addressing table (linear probing) of 4-byte slots over entries kept in
// fixed blocks. No node and no key string per token: ~80 bytes a token, where
// std::unordered_map<std::string, Entry> took ~136 and a check paid a cache miss for the
// bucket, one for the node and one for its key (docs/benchmarks.md, "Traffic shapes,
// session 11": the map was the first cost a Zipf spread over 100,000 tokens added).
// Entries never move in memory while they are in the table except when one is erased (the
// last entry fills its place), so a pointer from Find is valid until the next Erase/Clear.
// Thread-compatible: TokenVerifier guards it with its shared mutex (Find under the shared
// lock; `last_touch_queued` is the one field written then, through std::atomic_ref).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "common/crypto.h"

namespace warden::server {

struct AccountState;

class TokenTable {
 public:
  struct Entry {
    std::array<char, kTokenIdLen> id{};
    std::array<char, 32> secret_hash{};
    int64_t expires_at = 0;
    alignas(8) int64_t last_touch_queued = 0;  // clock millis; read and written via std::atomic_ref
    std::shared_ptr<const AccountState> account;
  };

  // The entry of `id`, or null (an id that is not kTokenIdLen characters is never held).
  Entry* Find(std::string_view id);
  const Entry* Find(std::string_view id) const;
  // The entry of `id`, added (with only its id set) when absent; second: whether it was added.
  // Null, false for an id that is not kTokenIdLen characters.
  std::pair<Entry*, bool> Insert(std::string_view id);
  bool Erase(std::string_view id);
  // Erases every entry for which `pred` is true.
  void EraseIf(const std::function<bool(const Entry&)>& pred);
  void Clear();
  size_t size() const { return size_; }
  // Heap bytes held (blocks, slots); tests/server/token_table_test.cc holds it to ~80 a token.
  size_t MemoryBytes() const;

 private:
  static constexpr size_t kBlockBits = 12;  // 4,096 entries (320 KiB) a block
  static constexpr size_t kBlockSize = size_t{1} << kBlockBits;
  static constexpr uint32_t kEmpty = 0;  // a slot holds entry index + 1
  // One object, not new Entry[]: an array of a type with a destructor carries an 8-byte
  // count before it, which took a block from jemalloc's 320 KiB size class to 384 KiB
  // (1.6 MiB of 100,000 tokens' 10 MiB).
  using Block = std::array<Entry, kBlockSize>;
  static_assert(sizeof(Block) == 320 << 10, "a block fills a size class of the allocator");

  Entry& At(uint32_t index) { return (*blocks_[index >> kBlockBits])[index & (kBlockSize - 1)]; }
  const Entry& At(uint32_t index) const { return (*blocks_[index >> kBlockBits])[index & (kBlockSize - 1)]; }
  size_t Home(std::string_view id) const;
  // The slot holding `id`, or the empty slot where it would go.
  size_t Probe(std::string_view id) const;
  void Grow();
  void EraseAt(size_t slot);

  std::vector<std::unique_ptr<Block>> blocks_;
  std::vector<uint32_t> slots_;  // size a power of two (or 0), at most 3/4 full
  size_t size_ = 0;
};

}  // namespace warden::server
