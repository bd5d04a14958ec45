// What every backend of store/store.h shares about rows: the opaque paging cursor, the page
// limit, JSON columns, and the validation of users and accounts before they are written.
// Private to store/. Thread-safety: free functions without state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "store/store.h"

namespace warden::store {

// "No cursor": larger than any seq.
inline constexpr int64_t kNoCursor = INT64_MAX;

// Cursors are opaque to callers: "c" followed by the last seq returned, in base 10.
std::string EncodeCursor(int64_t seq);
// kNoCursor for ""; InvalidArgument for anything that is not a cursor.
StatusOr<int64_t> DecodeCursor(const std::string& cursor);
// limit <= 0: kDefaultPageLimit; at most kMaxPageLimit.
int ClampLimit(int limit);

StatusOr<nlohmann::json> ParseJsonColumn(const std::string& text, std::string_view what);
// Invalid UTF-8 (attributes come from clients) is replaced instead of throwing.
std::string DumpJson(const nlohmann::json& value);
// The roles column: a JSON array of strings.
std::string RolesJson(const std::vector<std::string>& roles);
StatusOr<std::vector<std::string>> ParseRoles(const std::string& text);

// Sets the fields `update` sets.
void ApplyUpdate(const UserUpdate& update, User* u);
void ApplyUpdate(const AccountUpdate& update, ServiceAccount* a);

// A new account as CreateAccount stores it: id (when empty), times and version 1 assigned,
// computed fields cleared.
ServiceAccount NewAccountRow(const ServiceAccount& account, int64_t now, std::string id);
// The caller's audit entry with what the change knows filled where it is empty.
AuditEntry FillAudit(const AuditEntry& audit, const std::string& tenant_id, const std::string& target_id,
                     const std::string& target_name);

// InvalidArgument naming the field.
Status ValidateUser(const User& u);
Status ValidateAccount(const ServiceAccount& a);
Status ValidateToken(const ApiTokenRecord& t);
// The bounds of store.h; `index` names the entry in the error (entries[index].field).
Status ValidateDirectoryEntry(const DirectoryEntry& e, size_t index);

}  // namespace warden::store
