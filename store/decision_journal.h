// The decision log's append-only front file (`<database>-decisions`).
//
// Why: committing every batch of decision rows to SQLite cost ~8 WAL pages (32 KiB) and
// ~200 µs per transaction; on the check path that was most of a request's cost and, through
// the WAL checkpoints it forced, the source of the p99 stalls. A journal append is one
// write() of the rows' bytes (~300 bytes a row). It gives the same durability as a
// synchronous=NORMAL SQLite commit: once Append() returns, the rows survive a crash of the
// process (they are in the kernel's page cache) but not necessarily a power loss.
// SqliteStore moves the rows into the decision_chunk table in transactions in the
// background (and before any read of the table), then starts the file over.
//
// File: an 8-byte header ("WDJ1" + u32 generation), then records
// [u32 payload length][u32 CRC-32 of generation + payload][payload: u32 row count, rows].
// Bit 31 of the row count marks rows that end with the caller fields (journals written
// before them are read as they are).
// Reset() starts a new generation at the beginning without shrinking the file, so appends
// overwrite blocks the file already has; the scan at Open() stops at the first record that
// does not check out (a torn write, or what is left of the previous generation).
// Thread-safety: Append() and Reset() serialize on an internal mutex; Read() may run
// concurrently with Append(), but not with another Read() (it reuses one buffer).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace warden::store {

class DecisionJournal {
 public:
  static StatusOr<std::unique_ptr<DecisionJournal>> Open(const std::string& path);
  ~DecisionJournal();
  DecisionJournal(const DecisionJournal&) = delete;
  DecisionJournal& operator=(const DecisionJournal&) = delete;

  // One record holding `rows` (every field, seq included).
  Status Append(const std::vector<DecisionRow>& rows);
  // Decodes whole records from `offset` (a record boundary, at least kHeaderBytes) toward the
  // end of what has been appended, into *out (replacing its contents, reusing its rows'
  // string buffers); returns the offset after them. One call decodes at most about `max_rows`
  // rows and one read buffer (256 KiB, or the one record at `offset` when it is larger), so a
  // caller goes on until end().
  StatusOr<int64_t> Read(int64_t offset, size_t max_rows, std::vector<DecisionRow>* out) const;
  // Frees what Read() keeps between calls (its read buffer and recycled rows), for a reader
  // done with this file: the store's mover keeps up to a few segments open behind it, and
  // each kept ~0.5 MiB.
  void ReleaseReadBuffers() const;
  // End of the last whole record.
  int64_t end() const { return end_.load(); }
  uint32_t generation() const { return generation_; }
  // Starts the file over (empty, generation + 1). The caller must have moved every record
  // elsewhere and hold off Append() callers.
  Status Reset();

  static constexpr int64_t kHeaderBytes = 8;

 private:
  DecisionJournal(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  Status WriteHeader(uint32_t generation);

  const std::string path_;
  const int fd_;
  std::mutex mu_;
  // Written by Open() and Reset() (under mu_, with appends held off by the caller); read by
  // Append() under mu_ and by Read(), which the store never runs during a Reset().
  uint32_t generation_ = 1;
  std::atomic<int64_t> end_{0};
  // Read()'s (its callers do not overlap): the read buffer, and recycled rows.
  mutable std::string read_buffer_;
  mutable std::vector<DecisionRow> spare_rows_;
};

}  // namespace warden::store
