#include "server/ops/metrics.h"

#include <cstdio>

#include "server/http/event_server.h"

namespace warden::server {

void Histogram::Observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Histogram::Render(const std::string& name, const std::string& help, std::string* out) const {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  char buf[64];
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    std::snprintf(buf, sizeof buf, "%g", kBounds[i]);
    *out += name + "_bucket{le=\"" + buf + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += buckets_[kBounds.size()].load(std::memory_order_relaxed);
  *out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(sum_micros_.load()) / 1e6);
  *out += name + "_sum " + buf + "\n";
  *out += name + "_count " + std::to_string(count_.load()) + "\n";
}

namespace {
void Counter(std::string* out, const std::string& name, const std::string& help, uint64_t v,
             const char* type = "counter") {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
          std::to_string(v) + "\n";
}
}  // namespace

std::string_view BodyLimitName(BodyLimit limit) {
  switch (limit) {
    case BodyLimit::kAttributes: return "attributes";
    case BodyLimit::kChecks: return "checks";
  }
  return "attributes";
}

std::string Metrics::Render(const std::string& revision) const {
  std::string out;
  out += "# HELP warden_decisions_total Decisions answered, by outcome and reason.\n"
         "# TYPE warden_decisions_total counter\n";
  for (int allowed = 0; allowed < 2; ++allowed) {
    for (int r = 0; r < kReasons; ++r) {
      uint64_t v = decisions[static_cast<size_t>(allowed)][static_cast<size_t>(r)].load();
      out += "warden_decisions_total{allowed=\"" + std::string(allowed ? "true" : "false") +
             "\",reason=\"" + std::string(engine::ReasonName(static_cast<engine::Reason>(r))) +
             "\"} " + std::to_string(v) + "\n";
    }
  }
  Counter(&out, "warden_token_failures_total", "Checks whose token was malformed, unknown, expired or deleted.", token_failures.load());
  Counter(&out, "warden_token_cache_hits_total", "Token verifications served from memory.", token_cache_hits.load());
  Counter(&out, "warden_token_cache_misses_total", "Token verifications that read the store.", token_cache_misses.load());
  Counter(&out, "warden_decision_log_queue_depth", "Decision-log rows waiting for their commit.", static_cast<uint64_t>(decision_queue_depth.load()), "gauge");
  Counter(&out, "warden_decision_log_batches_total", "Decision-log transactions committed.", decision_batches.load());
  Counter(&out, "warden_decision_log_rows_total", "Decision-log rows committed.", decision_rows.load());
  Counter(&out, "warden_decision_log_failures_total", "Decision-log batches that failed to commit.", decision_log_failures.load());
  Counter(&out, "warden_decision_log_waits_total", "Decision-log batches that found the log's backlog over its bound and waited (up to 50 ms) for its mover.", decision_log_waits.load());
  Counter(&out, "warden_decision_log_overloaded_total", "Decision-log batches refused (answered 503) because the log's backlog was over its bound.", decision_log_overloaded.load());
  Counter(&out, "warden_decision_export_failures_total", "Decision batches the NDJSON export could not write.", decision_export_failures.load());
  Counter(&out, "warden_decision_journal_backlog_bytes", "Decision rows appended and not yet in the decision_chunk table: journal bytes the mover has not read, plus the memory of the open chunks holding the rest.", static_cast<uint64_t>(decision_journal_backlog_bytes.load()), "gauge");
  Counter(&out, "warden_decision_log_pruned_total", "Decision-log rows removed by retention.", decision_rows_pruned.load());
  Counter(&out, "warden_decision_log_last_batch_rows", "Rows in the last decision-log commit (mean batch = rows_total / batches_total).", decision_last_batch_rows.load(), "gauge");
  decision_commit_seconds.Render("warden_decision_log_commit_seconds", "Latency of one decision-log commit.", &out);
  request_seconds.Render("warden_http_request_seconds", "Latency of HTTP requests.", &out);
  Counter(&out, "warden_policy_reloads_total", "Successful policy reloads.", policy_reloads.load());
  Counter(&out, "warden_policy_reload_failures_total", "Policy reloads refused because of errors.", policy_reload_failures.load());
  Counter(&out, "warden_policy_loaded_timestamp_seconds", "When the serving policy snapshot was loaded.", static_cast<uint64_t>(policy_loaded_at_ms.load() / 1000), "gauge");
  out += "# HELP warden_policy_info The revision of the serving policy snapshot.\n# TYPE warden_policy_info gauge\n";
  out += "warden_policy_info{revision=\"" + revision + "\"} 1\n";
  Counter(&out, "warden_login_failures_total", "Failed logins.", login_failures.load());
  Counter(&out, "warden_checks_handed_off_total", "Checks whose token was not cached, decided on a worker thread so the event loop never waits for the store.", checks_handed_off.load());
  Counter(&out, "warden_token_unknown_cache_hits_total", "Made-up token ids answered from the bounded unknown-id cache, without the store.", token_unknown_cache_hits.load());
  Counter(&out, "warden_invalid_token_throttled_total", "Check requests answered 429: too many invalid tokens from one client address.", invalid_token_throttled.load());
  Counter(&out, "warden_admin_throttled_total", "Admin requests answered 429: too many with one credential (admin_requests_per_minute).", admin_throttled.load());
  static_assert(kHttpLimits == kHttpLimitCount);
  out += "# HELP warden_http_limit_total Times a bound of the HTTP front tripped (deadline, buffer, connection cap, size).\n"
         "# TYPE warden_http_limit_total counter\n";
  for (size_t i = 0; i < kHttpLimits; ++i) {
    out += std::string("warden_http_limit_total{limit=\"") + HttpLimitName(static_cast<HttpLimit>(i)) + "\"} " +
           std::to_string(http_limits[i].load()) + "\n";
  }
  out += "# HELP warden_limit_exceeded_total Request bodies refused by a bound, by bound.\n"
         "# TYPE warden_limit_exceeded_total counter\n";
  for (int l = 0; l < kBodyLimits; ++l) {
    out += "warden_limit_exceeded_total{limit=\"" + std::string(BodyLimitName(static_cast<BodyLimit>(l))) + "\"} " +
           std::to_string(limit_exceeded[static_cast<size_t>(l)].load()) + "\n";
  }
  return out;
}

}  // namespace warden::server
