#include "server/http/json_io.h"

#include <map>

#include "common/clock.h"
#include "common/ids.h"

namespace warden::server {

int HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return 200;
    // The content type is the one input whose rejection has its own HTTP status.
    case StatusCode::kInvalidArgument: return status.field() == "Content-Type" ? 415 : 400;
    case StatusCode::kFailedPrecondition: return 412;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kConflict: return 409;
    // An oversized body (field "body") is 413; every other exhausted limit is a rate: 429.
    case StatusCode::kResourceExhausted: return status.field() == "body" ? 413 : 429;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

void WriteJson(Response& res, int http_status, const nlohmann::json& body) {
  res.status = http_status;
  res.SetContent(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

void WriteError(Response& res, int http_status, std::string_view code,
                const std::string& message, const std::string& field, const nlohmann::json& extra) {
  nlohmann::json err = {{"code", code}, {"message", message}};
  if (!field.empty()) err["field"] = field;
  err.update(extra);
  WriteJson(res, http_status, {{"error", err}});
}

void WriteError(Response& res, const Status& status, const nlohmann::json& extra) {
  int http = HttpStatusFor(status);
  std::string_view code = StatusCodeName(status.code());
  if (http == 415) code = "unsupported_media_type";
  if (http == 413) code = "payload_too_large";
  WriteError(res, http, code, status.message(), status.field(), extra);
}

Status UnsupportedMediaType(std::string message) {
  return InvalidArgumentError(std::move(message), "Content-Type");
}

namespace {
// Media types are case-insensitive (RFC 9110 8.3.1): "Application/JSON" is JSON.
bool HasMediaType(std::string_view ct, std::string_view type) {
  if (ct.size() < type.size()) return false;
  for (size_t i = 0; i < type.size(); ++i) {
    char c = ct[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != type[i]) return false;
  }
  return true;
}
}  // namespace

bool IsJsonContentType(const Request& req) {
  return HasMediaType(req.Header("Content-Type"), "application/json");
}

bool IsYamlContentType(const std::string& ct) {
  return HasMediaType(ct, "application/yaml") || HasMediaType(ct, "application/x-yaml") ||
         HasMediaType(ct, "text/yaml");
}

void WriteProtocolError(Response& res, int status, const std::string& message) {
  static const std::map<int, std::string> codes = {
      {404, "not_found"}, {405, "method_not_allowed"}, {408, "request_timeout"}, {411, "length_required"},
      {413, "payload_too_large"}, {414, "uri_too_long"}, {431, "headers_too_large"}, {500, "internal"}};
  auto it = codes.find(status);
  WriteError(res, status, it == codes.end() ? "invalid_argument" : it->second, message,
             status == 413 ? "body" : "");
}

void SetRequestId(const Request& req, Response& res, const Clock& clock) {
  std::string id = req.Header("X-Request-Id");
  if (id.empty() || id.size() > 128) id = NewUlid(clock);
  res.SetHeader("X-Request-Id", id);
}

StatusOr<nlohmann::json> ParseJsonObject(const Request& req) {
  if (!IsJsonContentType(req)) {
    return UnsupportedMediaType("the body must be application/json");
  }
  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return InvalidArgumentError("the body is not valid JSON");
  if (!body.is_object()) return InvalidArgumentError("the body must be a JSON object");
  return body;
}

StatusOr<std::string> RequiredString(const nlohmann::json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return InvalidArgumentError(key + " is required", key);
  if (!it->is_string()) return InvalidArgumentError(key + " must be a string", key);
  return it->get<std::string>();
}

StatusOr<std::string> OptionalString(const nlohmann::json& obj, const std::string& key,
                                     std::string fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_string()) return InvalidArgumentError(key + " must be a string", key);
  return it->get<std::string>();
}

StatusOr<bool> OptionalBool(const nlohmann::json& obj, const std::string& key, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return InvalidArgumentError(key + " must be a boolean", key);
  return it->get<bool>();
}

Status OnlyKeys(const nlohmann::json& obj, std::initializer_list<const char*> allowed,
                const std::string& prefix) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || it.key() == a;
    if (!ok) return InvalidArgumentError("unknown field '" + it.key() + "'", prefix + it.key());
  }
  return Status();
}

StatusOr<int64_t> QueryInt(const Request& req, const std::string& key, int64_t fallback,
                           int64_t lo, int64_t hi) {
  if (!req.HasParam(key)) return fallback;
  std::string v = req.Param(key);
  try {
    size_t pos = 0;
    long long n = std::stoll(v, &pos);
    if (pos != v.size()) throw std::invalid_argument("x");
    if (n < lo || n > hi) {
      return InvalidArgumentError(key + " must be between " + std::to_string(lo) + " and " +
                                      std::to_string(hi), key);
    }
    return static_cast<int64_t>(n);
  } catch (const std::exception&) {
    return InvalidArgumentError(key + " must be an integer", key);
  }
}

StatusOr<int64_t> QueryTime(const Request& req, const std::string& key) {
  if (!req.HasParam(key)) return int64_t{0};
  int64_t ms = 0;
  if (!ParseTimestamp(req.Param(key), &ms)) {
    return InvalidArgumentError(key + " must be an RFC 3339 time (2026-01-31T12:00:00Z)", key);
  }
  return ms;
}

}  // namespace warden::server
