#include "server/decision_logger.h"

#include <chrono>

namespace warden::server {

DecisionLogger::DecisionLogger(store::DecisionLog* log, Metrics* metrics, const Clock& clock)
    : log_(log), metrics_(metrics), clock_(clock), writer_([this] { Run(); }) {}

DecisionLogger::~DecisionLogger() { Stop(); }

void DecisionLogger::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  writer_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

Status DecisionLogger::Write(std::vector<store::DecisionRow>* rows) {
  Pending pending{rows, Status(), false};
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return UnavailableError("the decision log is shutting down");
  queue_.push_back(&pending);
  metrics_->decision_queue_depth.fetch_add(static_cast<int64_t>(rows->size()));
  writer_cv_.notify_one();
  done_cv_.wait(lock, [&] { return pending.done; });
  return pending.result;
}

void DecisionLogger::Run() {
  std::vector<Pending*> batch;
  std::vector<store::DecisionRow> rows;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      writer_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      batch.assign(queue_.begin(), queue_.end());
      queue_.clear();
    }
    rows.clear();
    for (Pending* p : batch) {
      for (auto& r : *p->rows) rows.push_back(std::move(r));
    }
    auto start = std::chrono::steady_clock::now();
    Status st = log_->AppendDecisions(&rows);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics_->decision_commit_seconds.Observe(secs);
    metrics_->decision_queue_depth.fetch_sub(static_cast<int64_t>(rows.size()));
    if (st.ok()) {
      metrics_->decision_batches++;
      metrics_->decision_rows += rows.size();
      metrics_->decision_last_batch_rows = rows.size();
    } else {
      metrics_->decision_log_failures++;
    }
    // Give every writer its rows back (with seq filled) in submission order.
    size_t next = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (Pending* p : batch) {
        for (auto& r : *p->rows) r = std::move(rows[next++]);
        p->result = st.ok() ? Status() : UnavailableError("the decision log cannot be written");
        p->done = true;
      }
    }
    done_cv_.notify_all();
    batch.clear();
  }
}

}  // namespace warden::server
