// The decision log's export side: every decision row, once it is durable in the log, as one
// JSON line in a file a SIEM shipper (Filebeat, Vector, Fluent Bit) tails. DecisionSink is the
// interface an export implements (an NDJSON file now; Kafka when one is asked for).
//
// NdjsonSink writes a batch with one write(2); the lines hold the token id, never a token or
// a secret (a DecisionRow has none). When the file passes max_bytes it is renamed to
// `<path>.<UTC time>` and a new one is started; at most keep_files rotated files are kept
// (the oldest go). Sync() fdatasyncs the current file (the server calls it about once a
// second, beside the journal's schedule: the journal survives a process crash, so does the
// export's page cache; a power loss may lose the last second of lines, not the log's rows).
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace warden::store {

class DecisionSink {
 public:
  virtual ~DecisionSink() = default;
  // Appends every row of the batch; on error none or some of the rows may be written.
  virtual Status Write(const std::vector<DecisionRow>& rows) = 0;
  // Makes what was written survive a power loss.
  virtual Status Sync() = 0;
};

class NdjsonSink final : public DecisionSink {
 public:
  struct Options {
    std::string path;
    int64_t max_bytes = 64ll << 20;
    int keep_files = 10;
  };
  // Opens (appending to) or creates path, 0600.
  static StatusOr<std::unique_ptr<NdjsonSink>> Open(Options options, const Clock& clock);
  ~NdjsonSink() override;

  Status Write(const std::vector<DecisionRow>& rows) override;
  Status Sync() override;

  // One row's line (with its newline): the shape of GET /v1/decisions items, plus seq and
  // tenant_id.
  static void AppendLine(const DecisionRow& row, std::string* out);

 private:
  NdjsonSink(Options options, const Clock& clock) : options_(std::move(options)), clock_(clock) {}
  Status OpenFile();
  Status RotateLocked();

  const Options options_;
  const Clock& clock_;
  std::mutex mu_;
  int fd_ = -1;        // guarded by mu_
  int64_t size_ = 0;   // guarded by mu_
  std::string line_;   // guarded by mu_; reused
};

}  // namespace warden::store
