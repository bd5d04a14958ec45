#include "server/ops/policy_manager.h"

#include <pthread.h>

#include <algorithm>
#include <filesystem>

namespace warden::server {

namespace fs = std::filesystem;

PolicyManager::PolicyManager(std::string dir, const Clock& clock, Metrics* metrics)
    : dir_(std::move(dir)), clock_(clock), metrics_(metrics) {}

PolicyManager::~PolicyManager() { StopWatching(); }

std::string PolicyManager::Fingerprint() const {
  std::vector<std::string> parts;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    auto ext = it->path().extension().string();
    if (ext != ".yaml" && ext != ".yml") continue;
    auto mtime = fs::last_write_time(it->path(), ec).time_since_epoch().count();
    parts.push_back(it->path().string() + "|" + std::to_string(it->file_size(ec)) + "|" +
                    std::to_string(mtime));
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (auto& p : parts) out += p + "\n";
  return out;
}

Status PolicyManager::Reload() {
  std::lock_guard<std::mutex> reload_lock(reload_mu_);
  std::string fingerprint = Fingerprint();
  engine::TreeResult result = engine::CompileTree(dir_);
  int64_t now = clock_.NowMillis();
  std::vector<std::function<void()>> listeners;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_attempt_at_ = now;
    fingerprint_ = fingerprint;
    if (!result.snapshot) {
      last_errors_ = result.errors;
      metrics_->policy_reload_failures++;
    } else {
      last_errors_.clear();
      loaded_at_ = now;
      current_.store(result.snapshot);
      metrics_->policy_reloads++;
      metrics_->policy_loaded_at_ms = now;
      listeners = listeners_;
    }
  }
  if (!result.snapshot) {
    std::string msg = "the policy tree has " + std::to_string(result.errors.size()) +
                      " error(s); the previous snapshot keeps serving";
    for (size_t i = 0; i < result.errors.size() && i < 20; ++i) msg += "\n" + result.errors[i].ToString();
    return InvalidArgumentError(msg);
  }
  for (auto& l : listeners) l();
  return Status();
}

nlohmann::json PolicyManager::StatusJson() const {
  auto snap = Current();
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& e : last_errors_) errors.push_back(e.ToJson());
  return {
      {"revision", snap ? nlohmann::json(snap->revision()) : nlohmann::json(nullptr)},
      {"loaded_at", loaded_at_ ? nlohmann::json(FormatTimestamp(loaded_at_)) : nlohmann::json(nullptr)},
      {"policies_dir", dir_},
      {"last_reload", {{"at", last_attempt_at_ ? nlohmann::json(FormatTimestamp(last_attempt_at_)) : nlohmann::json(nullptr)},
                       {"ok", last_errors_.empty()},
                       {"errors", errors}}},
  };
}

void PolicyManager::OnSwap(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_.push_back(std::move(listener));
}

void PolicyManager::StartWatching(int poll_millis) {
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    stop_ = false;
  }
  watcher_ = std::thread([this, poll_millis] { WatchLoop(poll_millis); });
}

void PolicyManager::StopWatching() {
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    stop_ = true;
  }
  watch_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

void PolicyManager::WatchLoop(int poll_millis) {
  pthread_setname_np(pthread_self(), "warden-watch");
  std::unique_lock<std::mutex> lock(watch_mu_);
  while (!watch_cv_.wait_for(lock, std::chrono::milliseconds(poll_millis), [this] { return stop_; })) {
    lock.unlock();
    std::string now = Fingerprint();
    bool changed;
    {
      std::lock_guard<std::mutex> l(mu_);
      changed = now != fingerprint_;
    }
    if (changed) (void)Reload();  // errors are kept for /v1/policies/status
    lock.lock();
  }
}

}  // namespace warden::server
