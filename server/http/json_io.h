// HTTP helpers shared by every route: the one place Status becomes an HTTP answer, JSON
// body parsing with clear 4xx errors, and small request accessors. Stateless; thread-safe.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "server/http/message.h"

namespace warden::server {

// The HTTP status for a Status code (InvalidArgument 400, Unauthenticated 401, ...).
int HttpStatusFor(const Status& status);
// Writes {"error": {"code", "message", "field"?}} with the mapped HTTP status; `extra` adds
// members to the error object (e.g. the "missing" list of a refused escalation).
void WriteError(Response& res, const Status& status, const nlohmann::json& extra = nlohmann::json::object());
void WriteError(Response& res, int http_status, std::string_view code,
                const std::string& message, const std::string& field = {},
                const nlohmann::json& extra = nlohmann::json::object());
void WriteJson(Response& res, int http_status, const nlohmann::json& body);
// The JSON error of a request no route handled: unknown endpoint, or HTTP a front refused
// (408, 411, 413, 414, 431, 505, ...). Both fronts use it so their errors read the same.
void WriteProtocolError(Response& res, int status, const std::string& message);
// X-Request-Id of the answer: the caller's (when 1-128 chars) or a new ULID.
void SetRequestId(const Request& req, Response& res, const Clock& clock);

// Parses the body as a JSON object. 415 (as kFailedPrecondition with code
// "unsupported_media_type") when the content type is not JSON, 400 when malformed.
StatusOr<nlohmann::json> ParseJsonObject(const Request& req);
bool IsJsonContentType(const Request& req);
bool IsYamlContentType(const std::string& content_type);

// Typed field access with errors naming the field.
StatusOr<std::string> RequiredString(const nlohmann::json& obj, const std::string& key);
StatusOr<std::string> OptionalString(const nlohmann::json& obj, const std::string& key,
                                     std::string fallback = {});
StatusOr<bool> OptionalBool(const nlohmann::json& obj, const std::string& key, bool fallback);
// Fails on keys outside `allowed`.
Status OnlyKeys(const nlohmann::json& obj, std::initializer_list<const char*> allowed,
                const std::string& prefix = {});

// A query parameter as an integer in [lo, hi]; `fallback` when absent.
StatusOr<int64_t> QueryInt(const Request& req, const std::string& key, int64_t fallback,
                           int64_t lo, int64_t hi);
// A query parameter as an RFC 3339 time in millis; 0 when absent.
StatusOr<int64_t> QueryTime(const Request& req, const std::string& key);

// A status whose code maps to 415.
Status UnsupportedMediaType(std::string message);

}  // namespace warden::server
