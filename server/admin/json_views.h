// JSON views of store rows for API responses (snake_case, RFC 3339 times), and the admin
// API's readers of paging and attributes. Never includes a secret: no token, hash, password
// hash, tenant token or CSRF token. Stateless.
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "server/http/message.h"
#include "store/store.h"

namespace warden::server {

nlohmann::json UserJson(const store::User& user);
nlohmann::json AccountJson(const store::ServiceAccount& account);
nlohmann::json TokenJson(const store::ApiTokenRecord& token);
nlohmann::json AuditJson(const store::AuditEntry& entry);
nlohmann::json DecisionJson(const store::DecisionRow& row);
nlohmann::json PolicyVersionJson(const store::PolicyVersion& version);
// RFC 3339, or null for 0.
nlohmann::json TimeJson(int64_t millis);

// `limit` (1..1000, default 50) and `cursor` of a paged listing.
StatusOr<store::ListOptions> PageOptions(const Request& req);
// The free-form `attributes` of a user or account: an object whose values conditions can read
// (strings, numbers, booleans, arrays of strings).
Status CheckAttributes(const nlohmann::json& value);

template <typename T, typename F>
nlohmann::json PageJson(const store::Page<T>& page, F&& to_json) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& item : page.items) items.push_back(to_json(item));
  return {{"items", items},
          {"next_cursor", page.next_cursor.empty() ? nlohmann::json(nullptr) : nlohmann::json(page.next_cursor)}};
}

}  // namespace warden::server
