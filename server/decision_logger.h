// Group commit for the decision log. Rows reach the log in one of two ways:
//  - TryWriteNow(): when no commit is running or queued, the caller commits its rows on its
//    own thread (a lone client pays no thread hand-off);
//  - Submit(): otherwise the rows are queued for the writer thread, which commits everything
//    queued in one transaction and then runs each submitter's callback. The event loop keeps
//    reading and deciding while a commit runs, so under load every commit carries what
//    arrived during the previous one (fewer, larger transactions: far fewer WAL pages per row).
// Write() is Submit() plus a wait, for callers that own a thread per request (the TLS front).
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/status.h"
#include "server/metrics.h"
#include "store/store.h"

namespace warden::server {

class DecisionLogger {
 public:
  // Runs on the writer thread (or inline, when the logger is stopping) with OK once the rows
  // are committed, or Unavailable: the submitter must then not allow anything.
  using Done = std::function<void(const Status&)>;

  DecisionLogger(store::DecisionLog* log, Metrics* metrics);  // starts the writer thread
  ~DecisionLogger();                                          // Stop()

  void Submit(std::vector<store::DecisionRow> rows, Done done);
  // Commits `rows` on the calling thread if nothing is being committed or queued; nullopt
  // (rows untouched) otherwise.
  std::optional<Status> TryWriteNow(std::vector<store::DecisionRow>* rows);
  // Submit and wait.
  Status Write(std::vector<store::DecisionRow>* rows);
  // New submissions fail with Unavailable; commits what is queued, then joins the writer.
  void Stop();

 private:
  struct Pending {
    std::vector<store::DecisionRow> rows;
    Done done;
  };
  void WriterLoop();
  Status Commit(std::vector<store::DecisionRow>* rows);

  store::DecisionLog* log_;
  Metrics* metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> queue_;  // guarded by mu_
  bool busy_ = false;           // guarded by mu_; a commit is running
  bool stopping_ = false;       // guarded by mu_
  std::thread writer_;
};

}  // namespace warden::server
