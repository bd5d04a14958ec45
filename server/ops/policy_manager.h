// Serves the current compiled policy snapshot and replaces it on reload.
//
// Reload compiles the whole tree; only a clean compile is swapped in (atomically), otherwise
// the last good snapshot keeps serving and the errors are kept for GET /v1/policies/status.
// A watcher thread polls the tree (names, sizes, mtimes) and reloads on change.
// Thread-safety: all methods are safe from any thread. Current() is lock-free for readers
// (std::atomic<std::shared_ptr>), so a swap never blocks evaluations in flight.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "engine/engine.h"
#include "server/ops/metrics.h"

namespace warden::server {

class PolicyManager {
 public:
  PolicyManager(std::string dir, const Clock& clock, Metrics* metrics);
  ~PolicyManager();

  // Compiles the tree and swaps it in. Returns InvalidArgument listing the errors (the
  // previous snapshot keeps serving). `on_swap` listeners run after a successful swap.
  Status Reload();
  std::shared_ptr<const engine::PolicySnapshot> Current() const { return current_.load(); }

  // {"revision", "loaded_at", "policies_dir", "last_reload": {"at", "ok", "errors": [...]}}
  nlohmann::json StatusJson() const;

  void OnSwap(std::function<void()> listener);
  void StartWatching(int poll_millis = 1000);
  void StopWatching();

 private:
  std::string Fingerprint() const;
  void WatchLoop(int poll_millis);

  const std::string dir_;
  const Clock& clock_;
  Metrics* metrics_;
  std::atomic<std::shared_ptr<const engine::PolicySnapshot>> current_;

  mutable std::mutex mu_;
  int64_t loaded_at_ = 0;                       // guarded by mu_
  int64_t last_attempt_at_ = 0;                 // guarded by mu_
  std::vector<engine::CompileError> last_errors_;  // guarded by mu_
  std::vector<std::function<void()>> listeners_;   // guarded by mu_
  std::string fingerprint_;                     // guarded by mu_

  std::mutex reload_mu_;  // serialises reloads
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool stop_ = false;  // guarded by watch_mu_
  std::thread watcher_;
};

}  // namespace warden::server
