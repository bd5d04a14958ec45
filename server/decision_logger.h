// Group commit for the decision log: handlers hand their rows to Write(), which blocks
// until the batch holding them is committed by the single writer thread. Concurrent rows
// share one transaction, so the cost of a commit is spread over everything that arrived
// while the previous one ran.
// Thread-safety: Write() may be called from any number of threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "server/metrics.h"
#include "store/store.h"

namespace warden::server {

class DecisionLogger {
 public:
  DecisionLogger(store::DecisionLog* log, Metrics* metrics, const Clock& clock);
  ~DecisionLogger();  // commits what is queued, then stops the writer

  // Appends `rows` and returns once they are committed (OK) or the batch failed
  // (Unavailable: the caller must then not allow anything).
  Status Write(std::vector<store::DecisionRow>* rows);
  void Stop();

 private:
  struct Pending {
    std::vector<store::DecisionRow>* rows;
    Status result;
    bool done = false;
  };
  void Run();

  store::DecisionLog* log_;
  Metrics* metrics_;
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable writer_cv_;
  std::condition_variable done_cv_;
  std::deque<Pending*> queue_;  // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  std::thread writer_;
};

}  // namespace warden::server
