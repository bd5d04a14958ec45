// The check path's door to the decision log: appends a batch of rows and keeps the metrics.
// A write is a decision-journal append (store/decision_journal.h, microseconds), so there is
// no writer thread: the event loop writes every check of one pass as one batch (its group
// commit), and the TLS front's threads write their own rows, serialized by the store.
// With an export sink (store/ndjson_sink.h), every batch also goes there once it is durable in
// the log; an export that fails is counted (warden_decision_export_failures_total) and does
// not fail the checks: the log is the record, the export a copy.
// When the log is over its backlog bound (its mover behind), Write() waits up to 50 ms for it
// before the batch fails (503): a burst slows down rather than fails.
// Thread-safety: Write() may be called from any thread; Stop() waits for writes in progress.
#pragma once

#include <shared_mutex>
#include <vector>

#include "common/status.h"
#include "server/ops/metrics.h"
#include "store/ndjson_sink.h"
#include "store/store.h"

namespace warden::server {

class DecisionLogger {
 public:
  DecisionLogger(store::DecisionLog* log, Metrics* metrics) : log_(log), metrics_(metrics) {}
  // Set before the first Write (not thread-safe against writes); may be null.
  void SetSink(store::DecisionSink* sink) { sink_ = sink; }

  // Appends `rows` as one batch: OK once they are durable, else Unavailable (the caller must
  // then not allow anything). A store whose log is behind refuses the batch
  // (ResourceExhausted): counted in warden_decision_log_overloaded_total, also Unavailable.
  Status Write(std::vector<store::DecisionRow>* rows);
  // New writes fail with Unavailable; returns once the writes in progress are done.
  void Stop();

 private:
  store::DecisionLog* log_;
  Metrics* metrics_;
  store::DecisionSink* sink_ = nullptr;
  std::shared_mutex mu_;   // shared by writes, exclusive for Stop()
  bool stopping_ = false;  // guarded by mu_
};

}  // namespace warden::server
