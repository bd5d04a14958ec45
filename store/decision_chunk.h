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
//   u8 version (3; versions 1 and 2 are still read: 2 lacks the last two dictionary fields,
//   caller_id and caller_name)
//   varint first_seq
//   varint n_strings, then n_strings x (varint length, bytes)
//   varint n_rows, then n_rows x row
//   row: varint seq - previous seq (first_seq for the first row), zigzag time - previous
//        time (0 for the first row; modulo 2^64), zigzag latency_us, u8 flags (bit 0
//        allowed, bit 1 compact ULID), the id, then kDictFields varint indexes into the
//        strings (in DecisionRow order). The id: a canonical ULID as zigzag (its time - the
//        row's time) and its 80 random bits (10 bytes); anything else as varint length and
//        bytes. (Version 1: u8 allowed, then every id as length and bytes.)
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace warden::store {

// A chunk holds at most this many rows, and rows whose seqs lie less than kMaxChunkSpan apart:
// a page of a history reads one or two chunks, and a query for the rows before seq S finds
// every chunk holding one among those with last_seq < S + kMaxChunkSpan.
inline constexpr size_t kMaxChunkRows = 512;
inline constexpr int64_t kMaxChunkSpan = 1 << 16;

// Builds one chunk from rows added in ascending seq order (each distinct string is copied
// once; a row need not outlive Add()).
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
  // Writes the blob into *out (replacing it) and empties the builder for the next chunk.
  void Finish(std::string* out);

 private:
  uint32_t Intern(size_t field, std::string_view value);

  static constexpr size_t kDictFields = 18;
  size_t rows_ = 0;
  int64_t first_seq_ = 0, last_seq_ = 0, min_time_ = 0, max_time_ = 0, last_time_ = 0;
  std::string body_;  // the encoded rows
  std::deque<std::string> owned_;          // the distinct strings (stable addresses)
  std::vector<std::string_view> strings_;  // owned_, by index
  std::unordered_map<std::string_view, uint32_t> index_;
  // Per field, the last two distinct values and their indexes: most rows repeat a value of
  // the rows just before (a request's checks alternate actions, reasons and rules), so most
  // lookups are a comparison or two.
  struct Recent {
    std::string_view value[2];
    uint32_t index[2] = {};
    int size = 0;
    int next = 0;  // once both are used: the older one, replaced at the next miss
  };
  Recent recent_[kDictFields];
};

// Decodes a chunk blob, appending its rows (ascending seq) to *out. A blob that does not
// check out (truncated, an index out of range, an unknown version) is Internal and appends
// nothing.
Status DecodeChunk(std::string_view blob, std::vector<DecisionRow>* out);

}  // namespace warden::store
