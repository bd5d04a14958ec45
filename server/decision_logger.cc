#include "server/decision_logger.h"

#include <chrono>
#include <future>

namespace warden::server {

DecisionLogger::DecisionLogger(store::DecisionLog* log, Metrics* metrics)
    : log_(log), metrics_(metrics), writer_([this] { WriterLoop(); }) {}

DecisionLogger::~DecisionLogger() { Stop(); }

void DecisionLogger::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable() && writer_.get_id() != std::this_thread::get_id()) writer_.join();
}

void DecisionLogger::Submit(std::vector<store::DecisionRow> rows, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      metrics_->decision_queue_depth.fetch_add(static_cast<int64_t>(rows.size()));
      queue_.push_back(Pending{std::move(rows), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(UnavailableError("the decision log is shutting down"));
}

std::optional<Status> DecisionLogger::TryWriteNow(std::vector<store::DecisionRow>* rows) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (busy_ || !queue_.empty() || stopping_) return std::nullopt;
    busy_ = true;
  }
  Status st = Commit(rows);
  {
    std::lock_guard<std::mutex> lock(mu_);
    busy_ = false;
    if (!queue_.empty() || stopping_) cv_.notify_one();
  }
  return st;
}

Status DecisionLogger::Write(std::vector<store::DecisionRow>* rows) {
  if (auto now = TryWriteNow(rows)) return *now;
  std::promise<Status> result;
  Submit(std::move(*rows), [&result](const Status& st) { result.set_value(st); });
  return result.get_future().get();
}

void DecisionLogger::WriterLoop() {
  std::vector<Pending> batch;
  std::vector<store::DecisionRow> rows;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return (!queue_.empty() && !busy_) || (stopping_ && queue_.empty() && !busy_); });
    if (queue_.empty()) return;  // stopping, and everything accepted is committed
    busy_ = true;
    batch.swap(queue_);
    lock.unlock();
    rows.clear();
    for (auto& p : batch) {
      for (auto& r : p.rows) rows.push_back(std::move(r));
    }
    metrics_->decision_queue_depth.fetch_sub(static_cast<int64_t>(rows.size()));
    Status st = Commit(&rows);
    Status result = st.ok() ? Status() : UnavailableError("the decision log cannot be written");
    for (auto& p : batch) p.done(result);
    batch.clear();
    lock.lock();
    busy_ = false;
  }
}

Status DecisionLogger::Commit(std::vector<store::DecisionRow>* rows) {
  auto start = std::chrono::steady_clock::now();
  Status st = log_->AppendDecisions(rows);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->decision_commit_seconds.Observe(secs);
  if (st.ok()) {
    metrics_->decision_batches++;
    metrics_->decision_rows += rows->size();
    metrics_->decision_last_batch_rows = rows->size();
    return st;
  }
  metrics_->decision_log_failures++;
  return UnavailableError("the decision log cannot be written");
}

}  // namespace warden::server
