#include "server/decision_logger.h"

#include <chrono>

namespace warden::server {

DecisionLogger::DecisionLogger(store::DecisionLog* log, Metrics* metrics)
    : log_(log), metrics_(metrics) {}

DecisionLogger::~DecisionLogger() { Stop(); }

void DecisionLogger::Stop() {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  idle_cv_.wait(lock, [&] { return !leader_active_ && queue_.empty(); });
}

Status DecisionLogger::Write(std::vector<store::DecisionRow>* rows) {
  Pending pending{rows, Status(), false, {}};
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return UnavailableError("the decision log is shutting down");
  queue_.push_back(&pending);
  metrics_->decision_queue_depth.fetch_add(static_cast<int64_t>(rows->size()));
  // Wait until a leader committed our rows, or until we may lead (no commit in progress:
  // either nobody was committing, or the last leader handed over to the oldest writer).
  pending.cv.wait(lock, [&] { return pending.done || !leader_active_; });
  if (pending.done) return pending.result;
  leader_active_ = true;
  std::vector<Pending*> batch(queue_.begin(), queue_.end());  // includes `pending`
  queue_.clear();
  CommitBatch(batch, &pending, lock);
  return pending.result;
}

void DecisionLogger::CommitBatch(std::vector<Pending*>& batch, Pending* self,
                                 std::unique_lock<std::mutex>& lock) {
  lock.unlock();
  rows_.clear();
  for (Pending* p : batch) {
    for (auto& r : *p->rows) rows_.push_back(std::move(r));
  }
  auto start = std::chrono::steady_clock::now();
  Status st = log_->AppendDecisions(&rows_);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->decision_commit_seconds.Observe(secs);
  metrics_->decision_queue_depth.fetch_sub(static_cast<int64_t>(rows_.size()));
  if (st.ok()) {
    metrics_->decision_batches++;
    metrics_->decision_rows += rows_.size();
    metrics_->decision_last_batch_rows = rows_.size();
  } else {
    metrics_->decision_log_failures++;
  }
  // Give every writer its rows back (with seq filled) in submission order.
  size_t next = 0;
  for (Pending* p : batch) {
    for (auto& r : *p->rows) r = std::move(rows_[next++]);
  }
  lock.lock();
  for (Pending* p : batch) {
    p->result = st.ok() ? Status() : UnavailableError("the decision log cannot be written");
    p->done = true;
    // Under mu_: a follower cannot return (and destroy its Pending) before we are done here.
    if (p != self) p->cv.notify_one();
  }
  leader_active_ = false;
  if (!queue_.empty()) {
    queue_.front()->cv.notify_one();  // the oldest waiting writer leads the next batch
  } else if (stopping_) {
    idle_cv_.notify_all();
  }
}

}  // namespace warden::server
