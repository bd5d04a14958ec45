// Prometheus counters of the server, rendered by GET /metrics. Every member is atomic, so
// any thread may bump any counter without a lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "engine/engine.h"

namespace warden::server {

// Bounds of request bodies whose refusals are counted: warden_limit_exceeded_total{limit=...}.
enum class BodyLimit {
  kAttributes,  // engine::Attributes::Add: count, name and value lengths, list length, duplicates
  kChecks,      // Config::max_batch_checks
};
inline constexpr int kBodyLimits = 2;
std::string_view BodyLimitName(BodyLimit limit);  // "attributes", "checks"

class Histogram {
 public:
  // Upper bounds in seconds.
  static constexpr std::array<double, 12> kBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                                     0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5};
  void Observe(double seconds);
  void Render(const std::string& name, const std::string& help, std::string* out) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

struct Metrics {
  static constexpr int kReasons = engine::kReasonCount;  // engine::Reason values
  // decisions[allowed][reason]
  std::array<std::array<std::atomic<uint64_t>, kReasons>, 2> decisions{};
  std::atomic<uint64_t> token_failures{0};      // malformed, unknown, expired, deleted, wrong secret
  std::atomic<uint64_t> token_cache_hits{0};
  std::atomic<uint64_t> token_cache_misses{0};
  std::atomic<uint64_t> checks_handed_off{0};  // token not cached: decided on a worker, not the loop
  std::atomic<uint64_t> token_unknown_cache_hits{0};  // made-up token ids answered without the store
  std::atomic<uint64_t> invalid_token_throttled{0};   // 429s: too many invalid tokens from one address
  std::atomic<uint64_t> admin_throttled{0};           // 429s: too many admin requests with one credential
  std::atomic<int64_t> decision_queue_depth{0};
  std::atomic<uint64_t> decision_batches{0};
  std::atomic<uint64_t> decision_rows{0};
  std::atomic<uint64_t> decision_log_failures{0};
  std::atomic<uint64_t> decision_log_overloaded{0};  // batches refused: the log's backlog over its bound (503)
  std::atomic<uint64_t> decision_log_waits{0};  // batches that waited for the mover (over the bound at first)
  std::atomic<uint64_t> decision_export_failures{0};  // batches the NDJSON export could not write
  std::atomic<uint64_t> decision_last_batch_rows{0};  // rows/batches gives the mean batch size
  Histogram decision_commit_seconds;
  Histogram request_seconds;        // every HTTP request
  std::atomic<uint64_t> policy_reloads{0};
  std::atomic<uint64_t> policy_reload_failures{0};
  std::atomic<int64_t> policy_loaded_at_ms{0};
  std::atomic<uint64_t> login_failures{0};
  std::atomic<uint64_t> decision_rows_pruned{0};
  // Times each bound of the plain-HTTP front tripped, indexed by HttpLimit (event_server.h).
  static constexpr size_t kHttpLimits = 11;
  std::array<std::atomic<uint64_t>, kHttpLimits> http_limits{};
  // Set from the store when /metrics is rendered.
  std::atomic<int64_t> decision_journal_backlog_bytes{0};

  std::array<std::atomic<uint64_t>, kBodyLimits> limit_exceeded{};  // by BodyLimit

  void CountLimitExceeded(BodyLimit limit) {
    limit_exceeded[static_cast<size_t>(limit)].fetch_add(1, std::memory_order_relaxed);
  }
  void CountDecision(bool allowed, engine::Reason reason) {
    decisions[allowed ? 1 : 0][static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }
  // Prometheus text exposition format 0.0.4; `revision` labels warden_policy_info.
  std::string Render(const std::string& revision) const;
};

}  // namespace warden::server
