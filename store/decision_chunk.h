// How decision rows are stored in SQLite: a `decision_chunk` row holds up to kMaxChunkRows
// decisions of one principal, moved from the journal in the same transaction, as one blob.
//
// Why not one SQLite row per decision: at 40k checks a second (80k decisions) the mover
// spent ~18k instructions per decision building records and b-tree cells, about 0.15 of a
// CPU on this 2-vCPU machine, in bursts that pushed the check path's p99 to ~4 ms; and each
// decision took ~330 bytes of database. In a chunk the values a principal's decisions
// repeat (tenant, principal, token, model, action, rule, revision, client, path, ...) are
// stored once, in the chunk's dictionary; a row is its id, its seq and time as deltas, and
// one small index per field.
//
// Blob layout (varints are LEB128; "zigzag" maps signed to unsigned):
//   u8 version (4; versions 1-3 are still read: 3 writes every field index of every row, 2
//   also lacks the last two dictionary fields, caller_id and caller_name)
//   varint first_seq
//   varint n_strings, then n_strings x (varint length, bytes)
//   varint n_rows, then n_rows x row
//   row: varint seq - previous seq (first_seq for the first row), zigzag time - previous
//        time (0 for the first row; modulo 2^64), zigzag latency_us, u8 flags (bit 0
//        allowed, bit 1 compact ULID), the id, a 3-byte little-endian mask of the
//        kDictFields fields (in DecisionRow order) whose string is the previous row's (the
//        first row's "previous" indexes are all 0), then a varint index into the strings for
//        each other field. The id: a canonical ULID as zigzag (its time - the row's time) and
//        its 80 random bits (10 bytes); anything else as varint length and bytes. (Version 1:
//        u8 allowed, then every id as length and bytes; versions 1-3: no mask, every index.)
// The mask: a request's checks repeat most fields of the row before (principal, token,
// resource, revision, client, path, request id), so a row is ~22 bytes instead of ~34.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace warden::store {

// A chunk holds at most this many rows, and rows whose seqs lie less than kMaxChunkSpan apart:
// a page of a history reads one or two chunks, and a query for the rows before seq S finds
// every chunk holding one among those with last_seq < S + kMaxChunkSpan. Chunks held open
// across mover passes reach the span for every principal with under ~1/512 of the traffic:
// the wider it is, the fuller the long tail's chunks (fewer bytes a decision), and the more
// rows a deep tenant-wide page reads (every chunk straddling its cursor). 2^16: 78 bytes a
// decision in a Zipf mix over 10,000 accounts; 2^18 with DecodeChunkIf building only the
// rows a page returns: a page 1,000 deep at 1M decisions from 1,000 accounts in 6.3 ms,
// against the 10 ms target (2^20 had been 106 ms building every row; docs/benchmarks.md).
inline constexpr size_t kMaxChunkRows = 512;
inline constexpr int64_t kMaxChunkSpan = 1 << 18;

// Builds one chunk from rows added in ascending seq order (each distinct string is copied
// once; a row need not outlive Add()). Kept small, as the mover holds one per active
// principal between passes: the dictionary is held as it is written (one string of
// length-prefixed strings) with an index only once it has more than a few entries.
// Thread-compatible (one thread at a time).
class ChunkBuilder {
 public:
  // False (and nothing added) when `row` cannot join this chunk: it is full, `row` does not
  // come after its last row, or lies kMaxChunkSpan or more after its first row. An empty
  // builder takes any row.
  bool Add(const DecisionRow& row);
  bool empty() const { return rows_ == 0; }
  size_t rows() const { return rows_; }
  int64_t first_seq() const { return first_seq_; }
  int64_t last_seq() const { return last_seq_; }
  int64_t min_time() const { return min_time_; }
  int64_t max_time() const { return max_time_; }
  // Writes the blob of the rows added so far into *out (replacing it); the builder is unchanged.
  void Peek(std::string* out) const;
  // Peek, then Clear.
  void Finish(std::string* out);
  // Empties the builder for the next chunk (keeping its buffers).
  void Clear();
  // The heap bytes the builder holds (for the mover's memory bound), its own size included.
  size_t MemoryBytes() const;
  // Frees what only Add needs (the dictionary's offsets and index) and trims the encoded
  // strings and rows to their size, about half of a chunk of a few rows; the next Add rebuilds
  // them from the encoded dictionary. For the open chunks of quiet principals, which the mover
  // holds for many passes between their rows.
  void Compact();
  bool compact() const { return spans_.size() < strings_; }

  static constexpr size_t kDictFields = 18;

 private:
  uint32_t Intern(size_t field, std::string_view value);
  std::string_view String(uint32_t index) const {
    return std::string_view(dict_).substr(spans_[index].first, spans_[index].second);
  }
  void Rehash(size_t slots);
  void Expand();  // undoes Compact

  uint32_t rows_ = 0;
  uint32_t strings_ = 0;  // in dict_ (spans_ is empty while compact)
  int64_t first_seq_ = 0, last_seq_ = 0, min_time_ = 0, max_time_ = 0, last_time_ = 0;
  std::string body_;  // the encoded rows
  std::string dict_;  // the encoded strings, as in the blob
  std::vector<std::pair<uint32_t, uint32_t>> spans_;  // per string: offset of its bytes in dict_, length
  std::vector<uint32_t> slots_;  // open addressing over spans_ (index + 1; 0 = free), once it has > 8
  // Per field, the previous row's index and the one before it: most rows repeat a value of
  // the rows just before (a request's checks alternate actions, reasons and rules).
  uint32_t previous_[kDictFields][2] = {};
};

// Decodes a chunk blob, appending its rows (ascending seq) to *out. A blob that does not
// check out (truncated, an index out of range, an unknown version) is Internal and appends
// nothing.
Status DecodeChunk(std::string_view blob, std::vector<DecisionRow>* out);

// What DecodeChunkIf's filter sees of a row before its strings are copied.
struct DecisionRowHead {
  int64_t seq = 0;
  int64_t time = 0;
  bool allowed = false;
  std::string_view model, action;
};
// DecodeChunk, appending only the rows for which `keep` is true (every row when it is
// empty), and of those only the last (newest) `max_rows`. Every row is still checked. A page
// decodes every chunk straddling its cursor but returns 51 rows: building only those is what
// keeps a deep tenant-wide page under 10 ms.
Status DecodeChunkIf(std::string_view blob, const std::function<bool(const DecisionRowHead&)>& keep,
                     size_t max_rows, std::vector<DecisionRow>* out);

}  // namespace warden::store
