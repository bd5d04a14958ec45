// Group commit for the decision log: handlers hand their rows to Write(), which blocks
// until the batch holding them is committed. Concurrent rows share one transaction, so the
// cost of a commit is spread over everything that arrived while the previous one ran.
//
// Leader/follower, no writer thread: the calling thread that finds no commit in progress
// becomes the leader, takes everything queued (its own rows included), commits it, wakes
// exactly the threads whose rows were in that batch (each waits on its own condition
// variable), and hands the leadership to the oldest still-queued writer, if any. A lone
// client therefore commits on its own thread with no thread hand-off (two context switches
// fewer per check than a dedicated writer thread), and under load batches form exactly as
// before while the leader's commit runs.
// Thread-safety: Write() may be called from any number of threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "server/metrics.h"
#include "store/store.h"

namespace warden::server {

class DecisionLogger {
 public:
  DecisionLogger(store::DecisionLog* log, Metrics* metrics);
  ~DecisionLogger();  // Stop()

  // Appends `rows` and returns once they are committed (OK) or the batch failed
  // (Unavailable: the caller must then not allow anything).
  Status Write(std::vector<store::DecisionRow>* rows);
  // New writes fail with Unavailable; waits until every accepted write is committed.
  void Stop();

 private:
  struct Pending {
    std::vector<store::DecisionRow>* rows;
    Status result;
    bool done = false;
    std::condition_variable cv;  // signalled (under mu_) when done or made leader
  };
  // Commits `batch` (mu_ not held), then marks it done under `lock` and wakes its writers.
  void CommitBatch(std::vector<Pending*>& batch, Pending* self, std::unique_lock<std::mutex>& lock);

  store::DecisionLog* log_;
  Metrics* metrics_;
  std::mutex mu_;
  std::condition_variable idle_cv_;  // Stop() waits on it for the last commit
  std::deque<Pending*> queue_;       // guarded by mu_; writers not yet in a committed batch
  bool leader_active_ = false;       // guarded by mu_; a commit is in progress
  bool stopping_ = false;            // guarded by mu_
  std::vector<store::DecisionRow> rows_;  // the leader's batch buffer (only the leader uses it)
};

}  // namespace warden::server
