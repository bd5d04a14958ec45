// Server configuration: defaults < YAML config file < WARDEN_* environment < flags.
// A plain value type; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"

namespace warden::server {

struct Config {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./data";
  // Where the store is (store/store_factory.h): empty = SQLite in <data_dir>/warden.db;
  // postgres://... (or postgresql://) = PostgreSQL, shared by several replicas.
  std::string store;
  std::string policies_dir = "./policies";
  std::string token_prefix = "wdn";
  int threads = 64;                         // workers: httplib pool under TLS; plain HTTP uses min(threads, 16) for every route but /v1/check
  int64_t payload_limit = 1 << 20;          // bytes
  std::string tls_cert;                     // HTTPS when both are set
  std::string tls_key;
  std::string token_pepper;                 // empty: read or create <data_dir>/pepper (0600)
  std::string admin_email = "admin@localhost";
  std::string public_url;                   // the URL clients reach warden by (AuthZEN policy_decision_point); empty: from Host
  std::string admin_password;               // empty on first start: generated and printed once
  int64_t session_ttl_seconds = 12 * 3600;
  int64_t decision_retention_days = 90;     // 0 = keep forever
  int64_t decision_retention_rows = 1'000'000;   // newest rows kept per principal; 0 = unbounded
  int64_t decision_retention_unauthenticated_rows = 100'000;  // rows of invalid credentials, per tenant; 0 = unbounded
  std::string decision_export_path;         // non-empty: every decision also as a JSON line here (store/ndjson_sink.h)
  int64_t decision_export_max_bytes = 64ll << 20;  // the export file is rotated past this size
  int max_batch_checks = 100;               // checks per POST /v1/check
  int login_failures_per_minute = 10;       // per client address
  int invalid_tokens_per_minute = 600;      // check requests with an invalid token, per client address; then 429
  int admin_requests_per_minute = 1200;     // admin API requests per credential (session or token); then 429
  bool watch_policies = true;               // reload when a file under policies_dir changes
  bool access_log = true;                   // one line per request on stderr
  std::string forward_auth_header = "Authorization";  // forward-auth's credential ("Bearer <token>" or the token)
  std::string trusted_proxies;              // comma-separated peer addresses whose X-Forwarded-For / X-Real-IP count
  int test_token_lookup_delay_ms = 0;       // tests only: every token lookup in the store first waits this long
  // SQLite: how long a principal's decision chunk may stay open in memory before it is written
  // (sooner when it is full or memory asks); readers of the API see its rows meanwhile, plain
  // SQL readers of the file do not. Its rows are in the journal meanwhile; a restart replays
  // at most this much (and at most the journal's 64 MiB soft bound).
  int64_t decision_chunk_age_ms = 30000;
  // Tests only: > 0 bounds the SQLite decision log's backlog to this many bytes and stops its
  // background mover (only reads move rows), so the bound's 503 can be reached on purpose.
  int64_t test_decision_backlog_bytes = 0;
  // Bounds of the plain-HTTP front (server/event_server.h), each counted in /metrics as
  // warden_http_limit_total{limit=...} when it trips.
  int64_t header_timeout_ms = 10'000;       // first byte of a request to the end of its headers (408)
  int64_t request_timeout_ms = 30'000;      // first byte of a request to its last byte (408)
  int64_t idle_timeout_ms = 30'000;         // keep-alive connection idle, or its answers unread
  int64_t max_connections = 10'000;         // at the cap the longest-idle one closes, else the new one
  int64_t max_connections_per_address = 1'000;  // of one client address (0: no cap); trusted_proxies are exempt
  int64_t max_target_bytes = 8 * 1024;      // request target (414)
  int64_t connection_buffer_bytes = 1 << 20;  // unread answers of one connection before it is not read
  int64_t total_buffer_bytes = 32 << 20;    // buffered bytes of all connections before the greediest are not read

  std::string Host() const;
  int Port() const;
  std::string DatabasePath() const { return data_dir + "/warden.db"; }
  // What store/OpenStore is given: `store`, else the SQLite file in data_dir.
  std::string StoreLocation() const { return store.empty() ? DatabasePath() : store; }
};

// Applies a YAML config file (keys as in Config, snake_case) over `config`.
Status ApplyConfigFile(const std::string& path, Config* config);
// Applies WARDEN_* variables from `env` (WARDEN_LISTEN, WARDEN_DATA, WARDEN_STORE, WARDEN_POLICIES,
// WARDEN_TOKEN_PREFIX, WARDEN_THREADS, WARDEN_PAYLOAD_LIMIT, WARDEN_TLS_CERT, WARDEN_TLS_KEY,
// WARDEN_TOKEN_PEPPER, WARDEN_ADMIN_EMAIL, WARDEN_ADMIN_PASSWORD, WARDEN_SESSION_TTL,
// WARDEN_RETENTION_DAYS, WARDEN_RETENTION_ROWS, WARDEN_RETENTION_UNAUTHENTICATED_ROWS, WARDEN_ACCESS_LOG,
// WARDEN_INVALID_TOKENS_PER_MINUTE, WARDEN_ADMIN_REQUESTS_PER_MINUTE, WARDEN_DECISION_EXPORT, WARDEN_DECISION_EXPORT_MAX_BYTES,
// WARDEN_HEADER_TIMEOUT_MS, WARDEN_REQUEST_TIMEOUT_MS, WARDEN_IDLE_TIMEOUT_MS, WARDEN_MAX_CONNECTIONS,
// WARDEN_MAX_CONNECTIONS_PER_ADDRESS, WARDEN_MAX_TARGET_BYTES, WARDEN_CONNECTION_BUFFER_BYTES, WARDEN_TOTAL_BUFFER_BYTES,
// WARDEN_FORWARD_AUTH_HEADER, WARDEN_TRUSTED_PROXIES, WARDEN_PUBLIC_URL).
Status ApplyEnvironment(const std::map<std::string, std::string>& env, Config* config);
std::map<std::string, std::string> ProcessEnvironment();
// Checks ranges and formats (listen address, prefix, thread count, TLS pair).
Status Validate(const Config& config);

}  // namespace warden::server
