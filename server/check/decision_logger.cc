#include "server/check/decision_logger.h"

#include <chrono>
#include <mutex>
#include <thread>

namespace warden::server {

namespace {
constexpr std::chrono::milliseconds kBehindWait{50};
constexpr std::chrono::milliseconds kBehindStep{1};
}  // namespace

void DecisionLogger::Stop() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  stopping_ = true;
}

Status DecisionLogger::Write(std::vector<store::DecisionRow>* rows) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (stopping_) return UnavailableError("the decision log is shutting down");
  metrics_->decision_queue_depth.fetch_add(static_cast<int64_t>(rows->size()));
  auto start = std::chrono::steady_clock::now();
  Status st = log_->AppendDecisions(rows);
  // Over its backlog bound the log refuses the batch and stores nothing: the mover is behind.
  // Wait for it a little before failing the checks, so that a burst past the mover's pace
  // (one token, 20 checks a request: ~300k decisions a second) slows answers down instead
  // of failing them; the caller pausing is the back-pressure, and the mover gets the CPU.
  // Only a log that stays behind for kBehindWait (a stuck disk) fails the checks with 503.
  if (st.code() == StatusCode::kResourceExhausted) metrics_->decision_log_waits++;
  for (auto waited = std::chrono::milliseconds(0); st.code() == StatusCode::kResourceExhausted && waited < kBehindWait;
       waited += kBehindStep) {
    std::this_thread::sleep_for(kBehindStep);
    st = log_->AppendDecisions(rows);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->decision_commit_seconds.Observe(secs);
  metrics_->decision_queue_depth.fetch_sub(static_cast<int64_t>(rows->size()));
  if (st.code() == StatusCode::kResourceExhausted) {  // the log is behind: fail closed, counted apart
    metrics_->decision_log_overloaded++;
    return UnavailableError("the decision log is behind");
  }
  if (!st.ok()) {
    metrics_->decision_log_failures++;
    return UnavailableError("the decision log cannot be written");
  }
  metrics_->decision_batches++;
  metrics_->decision_rows += rows->size();
  metrics_->decision_last_batch_rows = rows->size();
  if (sink_ != nullptr && !sink_->Write(*rows).ok()) metrics_->decision_export_failures++;
  return st;
}

}  // namespace warden::server
