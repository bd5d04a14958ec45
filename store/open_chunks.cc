#include "store/open_chunks.h"

namespace warden::store {

void OpenChunks::Add(const DecisionRow& row, int64_t now) {
  Chunk* c = last_;
  if (c == nullptr || c->tenant_id() != row.tenant_id || c->principal_id() != row.principal_id) {
    key_.assign(row.tenant_id).push_back('\0');
    key_.append(row.principal_id);
    auto it = open_.find(key_);
    c = it == open_.end() ? nullptr : it->second.get();
  }
  if (c != nullptr) {
    const size_t before = c->builder.MemoryBytes();
    if (c->builder.Add(row)) {
      open_bytes_ += c->builder.MemoryBytes() - before;
      last_ = c;
      return;
    }
    Seal(by_first_seq_.find(c->builder.first_seq()));
    key_.assign(row.tenant_id).push_back('\0');
    key_.append(row.principal_id);
  }
  auto fresh = std::make_unique<Chunk>();
  fresh->key = key_;
  fresh->opened_at = now;
  fresh->builder.Add(row);  // an empty builder takes any row
  c = fresh.get();
  open_bytes_ += c->builder.MemoryBytes() + Overhead(*c);
  by_first_seq_.emplace(row.seq, c);
  open_.emplace(std::string_view(c->key), std::move(fresh));
  last_ = c;
}

void OpenChunks::Seal(std::map<int64_t, Chunk*>::iterator it) {
  Chunk* c = it->second;
  by_first_seq_.erase(it);
  auto node = open_.extract(std::string_view(c->key));
  const size_t bytes = c->builder.MemoryBytes() + Overhead(*c);
  open_bytes_ -= bytes;
  sealed_bytes_ += bytes;
  sealed_.push_back(std::move(node.mapped()));
  if (last_ == c) last_ = nullptr;
}

void OpenChunks::SealOpenedBefore(int64_t time) {
  // Chunks open in seq order, so (with a clock that does not go back) in time order too.
  while (!by_first_seq_.empty() && by_first_seq_.begin()->second->opened_at < time) Seal(by_first_seq_.begin());
}

void OpenChunks::SealThrough(int64_t seq) {
  while (!by_first_seq_.empty() && by_first_seq_.begin()->first <= seq) Seal(by_first_seq_.begin());
}

void OpenChunks::SealToFit(size_t bytes) {
  if (open_bytes_ <= bytes) return;
  // Compacting halves a chunk of a few rows and keeps it open, where sealing would store those
  // few rows with a dictionary of their own: compact the oldest down to 3/4 of the bound, going
  // on from where the last call stopped (a chunk that grew since is not old and quiet), then
  // seal while still over it.
  const size_t target = bytes / 4 * 3;
  auto it = by_first_seq_.lower_bound(compact_from_);
  for (; it != by_first_seq_.end() && open_bytes_ > target; ++it) {
    ChunkBuilder& b = it->second->builder;
    if (b.compact()) continue;
    const size_t before = b.MemoryBytes();
    b.Compact();
    open_bytes_ -= before - b.MemoryBytes();
  }
  compact_from_ = it == by_first_seq_.end() ? INT64_MIN : it->first;
  while (!by_first_seq_.empty() && open_bytes_ > bytes) Seal(by_first_seq_.begin());
}

void OpenChunks::SealAll() {
  while (!by_first_seq_.empty()) Seal(by_first_seq_.begin());
}

void OpenChunks::SealWhere(const std::function<bool(const Chunk&)>& pred) {
  for (auto it = by_first_seq_.begin(); it != by_first_seq_.end();) {
    auto next = std::next(it);
    if (pred(*it->second)) Seal(it);
    it = next;
  }
}

void OpenChunks::DropSealed(size_t n) {
  for (size_t i = 0; i < n && !sealed_.empty(); ++i) {
    sealed_bytes_ -= sealed_.front()->builder.MemoryBytes() + Overhead(*sealed_.front());
    sealed_.pop_front();
  }
}

void OpenChunks::ForEach(std::string_view tenant_id, std::string_view principal_id,
                         const std::function<void(const Chunk&)>& fn) const {
  const auto matches = [&](const Chunk& c) {
    return c.tenant_id() == tenant_id && (principal_id.empty() || c.principal_id() == principal_id);
  };
  if (!principal_id.empty()) {
    std::string key(tenant_id);
    key.push_back('\0');
    key.append(principal_id);
    auto it = open_.find(key);
    if (it != open_.end()) fn(*it->second);
  } else {
    for (const auto& [key, c] : open_) {
      if (matches(*c)) fn(*c);
    }
  }
  for (const auto& c : sealed_) {
    if (matches(*c)) fn(*c);
  }
}

int64_t OpenChunks::CountRows(std::string_view tenant_id, std::string_view principal_id) const {
  int64_t n = 0;
  ForEach(tenant_id, principal_id, [&](const Chunk& c) { n += static_cast<int64_t>(c.builder.rows()); });
  return n;
}

}  // namespace warden::store
