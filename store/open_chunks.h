// The decision log's open chunks (SqliteStore's mover): per (tenant, principal), the chunk its
// next rows join, held in memory across mover passes until it is full or the mover seals it
// (it is old, the chunks are over their memory bound, or it holds rows of the journal segment
// that must go). Its rows are durable in the journal meanwhile, and queries read them here.
//
// Why: a pass every 5 ms that wrote one chunk per principal gave chunks of one or two rows
// with many accounts (~180 bytes a decision, 14x the mover's CPU); held across passes a
// principal's chunk fills up (docs/benchmarks.md, "Traffic shapes", session 8).
//
// Sealed chunks wait in seal order (a principal's in seq order) until the caller has written
// them and calls DropSealed. Every chunk, open or sealed, stays visible to ForEach.
// Thread-compatible: SqliteStore uses it under its ingest mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store/decision_chunk.h"
#include "store/store.h"

namespace warden::store {

class OpenChunks {
 public:
  struct Chunk {
    std::string key;  // tenant_id '\0' principal_id
    int64_t opened_at = 0;  // clock millis of its first row's arrival
    ChunkBuilder builder;
    std::string_view tenant_id() const { return std::string_view(key).substr(0, key.find('\0')); }
    std::string_view principal_id() const { return std::string_view(key).substr(key.find('\0') + 1); }
  };

  // Adds `row` (seqs ascending across calls) to its principal's open chunk, opened at `now`
  // when there is none; a chunk that cannot take it (full, or the seq span) is sealed first.
  void Add(const DecisionRow& row, int64_t now);
  // Seal open chunks, oldest first: every one opened before `time`; every one whose first seq
  // is <= `seq`; as many as it takes to bring the open chunks' memory to `bytes` (after
  // compacting the oldest, ChunkBuilder::Compact); all.
  void SealOpenedBefore(int64_t time);
  void SealThrough(int64_t seq);
  void SealToFit(size_t bytes);
  void SealAll();
  void SealWhere(const std::function<bool(const Chunk&)>& pred);

  const std::deque<std::unique_ptr<Chunk>>& sealed() const { return sealed_; }
  // Forgets the first `n` sealed chunks (written by the caller).
  void DropSealed(size_t n);

  // The first seq of the oldest open chunk; INT64_MAX when none is open.
  int64_t OldestOpenSeq() const { return by_first_seq_.empty() ? INT64_MAX : by_first_seq_.begin()->first; }
  // Heap bytes held by the open and the sealed chunks; 0 exactly when none is held.
  size_t MemoryBytes() const { return open_bytes_ + sealed_bytes_; }
  size_t open_count() const { return open_.size(); }
  // Rows held (open and sealed) for the tenant, and the principal unless it is empty.
  int64_t CountRows(std::string_view tenant_id, std::string_view principal_id) const;
  // Calls `fn` for every chunk held (open, then sealed) of the tenant, and the principal
  // unless it is empty.
  void ForEach(std::string_view tenant_id, std::string_view principal_id,
               const std::function<void(const Chunk&)>& fn) const;

 private:
  // A chunk's share of memory besides its builder's: the map entries and the key.
  static size_t Overhead(const Chunk& c) { return c.key.capacity() + 160; }
  void Seal(std::map<int64_t, Chunk*>::iterator it);

  std::unordered_map<std::string_view, std::unique_ptr<Chunk>> open_;  // keyed by Chunk::key
  std::map<int64_t, Chunk*> by_first_seq_;  // the open chunks by first seq (oldest first)
  std::deque<std::unique_ptr<Chunk>> sealed_;
  size_t open_bytes_ = 0, sealed_bytes_ = 0;
  int64_t compact_from_ = INT64_MIN;  // the first seq SealToFit's compaction goes on from
  Chunk* last_ = nullptr;  // the chunk of the previous Add (consecutive rows share a principal)
  std::string key_;        // scratch
};

}  // namespace warden::store
