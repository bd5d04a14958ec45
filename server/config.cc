#include "server/config.h"

#include <fstream>
#include <sstream>

#include "common/crypto.h"
#include "engine/yaml_json.h"

extern char** environ;

namespace warden::server {
namespace {

using Setter = Status (*)(const std::string& value, Config* c);

StatusOr<int64_t> ParseInt(const std::string& key, const std::string& value) {
  try {
    size_t pos = 0;
    long long v = std::stoll(value, &pos);
    if (pos != value.size()) throw std::invalid_argument("trailing");
    return static_cast<int64_t>(v);
  } catch (const std::exception&) {
    return InvalidArgumentError(key + ": not an integer: '" + value + "'", key);
  }
}

StatusOr<bool> ParseBool(const std::string& key, const std::string& value) {
  if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
  if (value == "false" || value == "0" || value == "no" || value == "off") return false;
  return InvalidArgumentError(key + ": not a boolean: '" + value + "'", key);
}

// One table maps each setting name to how it is applied, shared by file and environment.
Status Apply(const std::string& key, const std::string& value, Config* c) {
  if (key == "listen") { c->listen = value; return Status(); }
  if (key == "data_dir") { c->data_dir = value; return Status(); }
  if (key == "store") { c->store = value; return Status(); }
  if (key == "policies_dir") { c->policies_dir = value; return Status(); }
  if (key == "token_prefix") { c->token_prefix = value; return Status(); }
  if (key == "decision_export_path") { c->decision_export_path = value; return Status(); }
  if (key == "decision_export_max_bytes") { ASSIGN_OR_RETURN(c->decision_export_max_bytes, ParseInt(key, value)); return Status(); }
  if (key == "tls_cert") { c->tls_cert = value; return Status(); }
  if (key == "forward_auth_header") { c->forward_auth_header = value; return Status(); }
  if (key == "trusted_proxies") { c->trusted_proxies = value; return Status(); }
  if (key == "tls_key") { c->tls_key = value; return Status(); }
  if (key == "token_pepper") { c->token_pepper = value; return Status(); }
  if (key == "admin_email") { c->admin_email = value; return Status(); }
  if (key == "public_url") { c->public_url = value; return Status(); }
  if (key == "admin_password") { c->admin_password = value; return Status(); }
  if (key == "threads") { ASSIGN_OR_RETURN(int64_t v, ParseInt(key, value)); c->threads = static_cast<int>(v); return Status(); }
  if (key == "payload_limit") { ASSIGN_OR_RETURN(c->payload_limit, ParseInt(key, value)); return Status(); }
  if (key == "session_ttl_seconds") { ASSIGN_OR_RETURN(c->session_ttl_seconds, ParseInt(key, value)); return Status(); }
  if (key == "decision_retention_days") { ASSIGN_OR_RETURN(c->decision_retention_days, ParseInt(key, value)); return Status(); }
  if (key == "decision_retention_rows") { ASSIGN_OR_RETURN(c->decision_retention_rows, ParseInt(key, value)); return Status(); }
  if (key == "decision_retention_unauthenticated_rows") { ASSIGN_OR_RETURN(c->decision_retention_unauthenticated_rows, ParseInt(key, value)); return Status(); }
  if (key == "max_batch_checks") { ASSIGN_OR_RETURN(int64_t v, ParseInt(key, value)); c->max_batch_checks = static_cast<int>(v); return Status(); }
  if (key == "login_failures_per_minute") { ASSIGN_OR_RETURN(int64_t v, ParseInt(key, value)); c->login_failures_per_minute = static_cast<int>(v); return Status(); }
  if (key == "invalid_tokens_per_minute") { ASSIGN_OR_RETURN(int64_t v, ParseInt(key, value)); c->invalid_tokens_per_minute = static_cast<int>(v); return Status(); }
  if (key == "admin_requests_per_minute") { ASSIGN_OR_RETURN(int64_t v, ParseInt(key, value)); c->admin_requests_per_minute = static_cast<int>(v); return Status(); }
  if (key == "header_timeout_ms") { ASSIGN_OR_RETURN(c->header_timeout_ms, ParseInt(key, value)); return Status(); }
  if (key == "request_timeout_ms") { ASSIGN_OR_RETURN(c->request_timeout_ms, ParseInt(key, value)); return Status(); }
  if (key == "idle_timeout_ms") { ASSIGN_OR_RETURN(c->idle_timeout_ms, ParseInt(key, value)); return Status(); }
  if (key == "max_connections") { ASSIGN_OR_RETURN(c->max_connections, ParseInt(key, value)); return Status(); }
  if (key == "max_connections_per_address") { ASSIGN_OR_RETURN(c->max_connections_per_address, ParseInt(key, value)); return Status(); }
  if (key == "max_target_bytes") { ASSIGN_OR_RETURN(c->max_target_bytes, ParseInt(key, value)); return Status(); }
  if (key == "connection_buffer_bytes") { ASSIGN_OR_RETURN(c->connection_buffer_bytes, ParseInt(key, value)); return Status(); }
  if (key == "total_buffer_bytes") { ASSIGN_OR_RETURN(c->total_buffer_bytes, ParseInt(key, value)); return Status(); }
  if (key == "decision_chunk_age_ms") { ASSIGN_OR_RETURN(c->decision_chunk_age_ms, ParseInt(key, value)); return Status(); }
  if (key == "test_decision_backlog_bytes") { ASSIGN_OR_RETURN(c->test_decision_backlog_bytes, ParseInt(key, value)); return Status(); }
  if (key == "test_token_lookup_delay_ms") { ASSIGN_OR_RETURN(int64_t v, ParseInt(key, value)); c->test_token_lookup_delay_ms = static_cast<int>(v); return Status(); }
  if (key == "watch_policies") { ASSIGN_OR_RETURN(c->watch_policies, ParseBool(key, value)); return Status(); }
  if (key == "access_log") { ASSIGN_OR_RETURN(c->access_log, ParseBool(key, value)); return Status(); }
  return InvalidArgumentError("unknown setting '" + key + "'", key);
}

}  // namespace

std::string Config::Host() const {
  auto colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host;
}

int Config::Port() const {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return -1;
  try {
    size_t pos = 0;
    int port = std::stoi(listen.substr(colon + 1), &pos);
    return pos == listen.size() - colon - 1 ? port : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

Status ApplyConfigFile(const std::string& path, Config* config) {
  std::ifstream in(path);
  if (!in) return InvalidArgumentError("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  ASSIGN_OR_RETURN(nlohmann::json doc, engine::YamlToJson(ss.str(), path));
  if (doc.is_null()) return Status();
  if (!doc.is_object()) return InvalidArgumentError(path + ": the config file must be a mapping");
  for (auto& [key, value] : doc.items()) {
    std::string text;
    if (value.is_string()) text = value.get<std::string>();
    else if (value.is_number_integer() || value.is_boolean()) text = value.dump();
    else return InvalidArgumentError(path + ": " + key + ": expected a scalar", key);
    Status st = Apply(key, text, config);
    if (!st.ok()) return InvalidArgumentError(path + ": " + st.message(), key);
  }
  return Status();
}

Status ApplyEnvironment(const std::map<std::string, std::string>& env, Config* config) {
  static const std::pair<const char*, const char*> kVars[] = {
      {"WARDEN_LISTEN", "listen"}, {"WARDEN_DATA", "data_dir"}, {"WARDEN_STORE", "store"},
      {"WARDEN_POLICIES", "policies_dir"}, {"WARDEN_TOKEN_PREFIX", "token_prefix"},
      {"WARDEN_THREADS", "threads"}, {"WARDEN_PAYLOAD_LIMIT", "payload_limit"},
      {"WARDEN_TLS_CERT", "tls_cert"}, {"WARDEN_TLS_KEY", "tls_key"},
      {"WARDEN_TOKEN_PEPPER", "token_pepper"}, {"WARDEN_ADMIN_EMAIL", "admin_email"},
      {"WARDEN_ADMIN_PASSWORD", "admin_password"}, {"WARDEN_SESSION_TTL", "session_ttl_seconds"},
      {"WARDEN_RETENTION_DAYS", "decision_retention_days"},
      {"WARDEN_RETENTION_ROWS", "decision_retention_rows"}, {"WARDEN_ACCESS_LOG", "access_log"},
      {"WARDEN_RETENTION_UNAUTHENTICATED_ROWS", "decision_retention_unauthenticated_rows"},
      {"WARDEN_WATCH_POLICIES", "watch_policies"},
      {"WARDEN_INVALID_TOKENS_PER_MINUTE", "invalid_tokens_per_minute"},
      {"WARDEN_ADMIN_REQUESTS_PER_MINUTE", "admin_requests_per_minute"},
      {"WARDEN_TEST_TOKEN_LOOKUP_DELAY_MS", "test_token_lookup_delay_ms"},
      {"WARDEN_TEST_DECISION_BACKLOG_BYTES", "test_decision_backlog_bytes"},
      {"WARDEN_DECISION_CHUNK_AGE_MS", "decision_chunk_age_ms"},
      {"WARDEN_DECISION_EXPORT", "decision_export_path"},
      {"WARDEN_DECISION_EXPORT_MAX_BYTES", "decision_export_max_bytes"},
      {"WARDEN_HEADER_TIMEOUT_MS", "header_timeout_ms"}, {"WARDEN_REQUEST_TIMEOUT_MS", "request_timeout_ms"},
      {"WARDEN_IDLE_TIMEOUT_MS", "idle_timeout_ms"}, {"WARDEN_MAX_CONNECTIONS", "max_connections"},
      {"WARDEN_MAX_CONNECTIONS_PER_ADDRESS", "max_connections_per_address"},
      {"WARDEN_MAX_TARGET_BYTES", "max_target_bytes"},
      {"WARDEN_CONNECTION_BUFFER_BYTES", "connection_buffer_bytes"},
      {"WARDEN_TOTAL_BUFFER_BYTES", "total_buffer_bytes"},
      {"WARDEN_FORWARD_AUTH_HEADER", "forward_auth_header"}, {"WARDEN_TRUSTED_PROXIES", "trusted_proxies"},
      {"WARDEN_PUBLIC_URL", "public_url"},
  };
  for (const auto& [var, key] : kVars) {
    auto it = env.find(var);
    if (it == env.end()) continue;
    Status st = Apply(key, it->second, config);
    if (!st.ok()) return InvalidArgumentError(std::string(var) + ": " + st.message(), var);
  }
  return Status();
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos && kv.rfind("WARDEN_", 0) == 0) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

Status Validate(const Config& c) {
  if (c.Port() < 0 || c.Port() > 65535 || c.Host().empty()) {
    return InvalidArgumentError("listen must be HOST:PORT, got '" + c.listen + "'", "listen");
  }
  if (!IsValidTokenPrefix(c.token_prefix)) {
    return InvalidArgumentError("token_prefix must match [a-z0-9]{2,8}", "token_prefix");
  }
  if (c.threads < 2 || c.threads > 1024) return InvalidArgumentError("threads must be 2..1024", "threads");
  if (c.payload_limit < 1024 || c.payload_limit > (64 << 20)) {
    return InvalidArgumentError("payload_limit must be 1 KiB..64 MiB", "payload_limit");
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return InvalidArgumentError("tls_cert and tls_key must be set together", "tls_cert");
  }
  if (c.forward_auth_header.empty() || c.forward_auth_header.size() > 64 ||
      c.forward_auth_header.find_first_of(" \t\r\n:") != std::string::npos) {
    return InvalidArgumentError("forward_auth_header must be a header name", "forward_auth_header");
  }
  if (!c.public_url.empty() && c.public_url.rfind("http://", 0) != 0 && c.public_url.rfind("https://", 0) != 0) {
    return InvalidArgumentError("public_url must start with http:// or https://", "public_url");
  }
  if (c.session_ttl_seconds < 60) return InvalidArgumentError("session_ttl_seconds must be >= 60", "session_ttl_seconds");
  if (c.max_batch_checks < 1 || c.max_batch_checks > 1000) {
    return InvalidArgumentError("max_batch_checks must be 1..1000", "max_batch_checks");
  }
  if (c.login_failures_per_minute < 1 || c.invalid_tokens_per_minute < 1 || c.admin_requests_per_minute < 1) {
    return InvalidArgumentError("per-minute limits must be >= 1", "invalid_tokens_per_minute");
  }
  if (c.decision_retention_days < 0 || c.decision_retention_rows < 0 || c.decision_retention_unauthenticated_rows < 0) {
    return InvalidArgumentError("retention settings must be >= 0", "decision_retention_days");
  }
  struct Range {
    const char* name;
    int64_t value, min, max;
  };
  const Range ranges[] = {
      {"header_timeout_ms", c.header_timeout_ms, 10, 3'600'000},
      {"request_timeout_ms", c.request_timeout_ms, 10, 3'600'000},
      {"idle_timeout_ms", c.idle_timeout_ms, 10, 3'600'000},
      {"max_connections", c.max_connections, 1, 1'000'000},
      {"max_connections_per_address", c.max_connections_per_address, 0, 1'000'000},
      {"max_target_bytes", c.max_target_bytes, 64, 16 * 1024},
      {"connection_buffer_bytes", c.connection_buffer_bytes, 4096, 1LL << 30},
      {"total_buffer_bytes", c.total_buffer_bytes, 4096, 1LL << 40},
  };
  for (const Range& r : ranges) {
    if (r.value < r.min || r.value > r.max) {
      return InvalidArgumentError(std::string(r.name) + " must be " + std::to_string(r.min) + ".." + std::to_string(r.max), r.name);
    }
  }
  return Status();
}

}  // namespace warden::server
