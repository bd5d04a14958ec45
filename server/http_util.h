// HTTP helpers shared by every route: the one place Status becomes an HTTP answer, JSON
// body parsing with clear 4xx errors, and small request accessors. Stateless; thread-safe.
#pragma once

#include <httplib.h>

#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "store/store.h"

namespace warden::server {

// The HTTP status for a Status code (InvalidArgument 400, Unauthenticated 401, ...).
int HttpStatusFor(const Status& status);
// Writes {"error": {"code", "message", "field"?}} with the mapped HTTP status; `extra` adds
// members to the error object (e.g. the "missing" list of a refused escalation).
void WriteError(httplib::Response& res, const Status& status, const nlohmann::json& extra = nlohmann::json::object());
void WriteError(httplib::Response& res, int http_status, std::string_view code,
                const std::string& message, const std::string& field = {},
                const nlohmann::json& extra = nlohmann::json::object());
void WriteJson(httplib::Response& res, int http_status, const nlohmann::json& body);

// Parses the body as a JSON object. 415 (as kFailedPrecondition with code
// "unsupported_media_type") when the content type is not JSON, 400 when malformed.
StatusOr<nlohmann::json> ParseJsonObject(const httplib::Request& req);
bool IsJsonContentType(const httplib::Request& req);
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
StatusOr<int64_t> QueryInt(const httplib::Request& req, const std::string& key, int64_t fallback,
                           int64_t lo, int64_t hi);
// The free-form `attributes` of a user or account: an object whose values conditions can read
// (strings, numbers, booleans, arrays of strings).
Status CheckAttributes(const nlohmann::json& value);

// `limit` (1..1000, default 50) and `cursor` of a paged listing.
StatusOr<store::ListOptions> PageOptions(const httplib::Request& req);

// A query parameter as an RFC 3339 time in millis; 0 when absent.
StatusOr<int64_t> QueryTime(const httplib::Request& req, const std::string& key);

// A status whose code maps to 415.
Status UnsupportedMediaType(std::string message);

}  // namespace warden::server
