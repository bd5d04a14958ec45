// The storage interfaces of warden: tenants, users and sessions, service accounts and their
// policy versions, API tokens, the audit log and the decision log.
//
// server/ codes against these abstract classes; store/sqlite_store.h (SqliteStore, embedded)
// and store/pg_store.h (PgStore, shared by several replicas) implement all of them, and
// store/store_factory.h opens the one a location names. Nothing above store/ writes SQL or
// knows which backend runs.
//
// Conventions:
//   - Times are int64 Unix milliseconds; 0 means "none".
//   - ids are strings: ULIDs (common/ids.h) unless noted. Every row carries its tenant_id.
//   - Errors: NotFound (the named thing does not exist, or is soft-deleted), AlreadyExists
//     (a unique name/email/id collides), FailedPrecondition (optimistic version mismatch, a
//     database from a newer warden), InvalidArgument (bad cursor, empty required field),
//     Unavailable (disk full, I/O error, database busy), Internal (anything else). Messages
//     never contain secret values (token hashes, password hashes, tenant tokens, CSRF tokens).
//   - Mutating admin methods take an optional `const AuditEntry* audit`: when non-null, that
//     audit row is appended in the same transaction as the change, so "every change writes an
//     audit row" is atomic. The store fills the entry's id (new ULID), time (clock now) and
//     tenant_id when empty, and, for creates, target_id/target_name when empty.
//
// Thread-safety: every interface here is thread-safe; implementations must allow concurrent
// calls from many threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace warden::store {

// The id of the tenant a fresh install creates (DESIGN.md section 1). Not a ULID.
inline constexpr char kDefaultTenantId[] = "default";

// Actor types used in created_by_type / actor_type columns.
inline constexpr char kActorUser[] = "user";
inline constexpr char kActorServiceAccount[] = "service_account";
inline constexpr char kActorSystem[] = "system";

struct Tenant {
  std::string id;
  std::string name;
  std::string tenant_token;  // a UUID (common/ids.h NewUuid); a secret, never logged
  int64_t created_at = 0;
};

struct User {
  std::string id;
  std::string tenant_id;
  std::string email;  // unique per tenant, case-insensitive (ASCII)
  std::string name;
  std::vector<std::string> roles;
  nlohmann::json attributes = nlohmann::json::object();
  bool enabled = true;
  std::string password_hash;  // an encoded scrypt hash computed by server/; never logged
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

// Fields of a user to change; unset fields keep their value.
struct UserUpdate {
  std::optional<std::string> email;
  std::optional<std::string> name;
  std::optional<std::vector<std::string>> roles;
  std::optional<nlohmann::json> attributes;
  std::optional<bool> enabled;
  std::optional<std::string> password_hash;
};

struct Session {
  std::string id;
  std::string tenant_id;
  std::string user_id;
  std::string token_hash;  // hex of a keyed hash the server computes; never plaintext
  std::string csrf_token;
  int64_t created_at = 0;
  int64_t expires_at = 0;
};

struct ServiceAccount {
  std::string id;
  std::string tenant_id;
  std::string name;  // unique among the tenant's non-deleted accounts
  std::string description;
  bool enabled = true;
  std::string policy_yaml;
  int64_t policy_version = 0;  // 1 after creation; +1 per SetPolicy
  nlohmann::json attributes = nlohmann::json::object();
  int64_t created_at = 0;
  std::string created_by_type;
  std::string created_by_id;
  int64_t updated_at = 0;
  int64_t deleted_at = 0;  // 0 = live
  // Computed on read (Get*/List*): number of tokens and the max of their last_used_at.
  int64_t token_count = 0;
  int64_t last_used_at = 0;
};

// Fields of an account to change; unset fields keep their value.
struct AccountUpdate {
  std::optional<std::string> name;
  std::optional<std::string> description;
  std::optional<bool> enabled;
  std::optional<nlohmann::json> attributes;
};

struct PolicyVersion {
  std::string tenant_id;
  std::string account_id;
  int64_t version = 0;
  std::string policy_yaml;
  int64_t created_at = 0;
  std::string actor_type;
  std::string actor_id;
};

struct ApiTokenRecord {
  std::string id;  // the 10-char public token id (DESIGN.md section 4), given by the caller
  std::string tenant_id;
  std::string account_id;
  std::string name;
  std::string secret_hash;  // raw 32 bytes of HMAC-SHA256(pepper, secret); never logged
  std::string display_prefix;  // "wdn_AbC1…"
  int64_t created_at = 0;
  std::string created_by_type;
  std::string created_by_id;
  int64_t last_used_at = 0;
  int64_t expires_at = 0;  // 0 = never
};

// The check hot path's cache-miss answer: a token and its live (non-deleted) account.
struct TokenLookup {
  ApiTokenRecord token;
  ServiceAccount account;  // token_count/last_used_at are not computed here (left 0)
};

struct AuditEntry {
  int64_t seq = 0;  // assigned at insert (commit order)
  std::string id;
  std::string tenant_id;
  int64_t time = 0;
  std::string actor_type;
  std::string actor_id;
  std::string action;  // "service_account.created", "token.deleted", ...
  std::string target_type;
  std::string target_id;
  std::string target_name;
  nlohmann::json details = nlohmann::json::object();
};

struct DecisionRow {
  int64_t seq = 0;  // assigned at insert (commit order)
  std::string id;   // the decision ULID
  int64_t time = 0;
  std::string tenant_id;
  std::string principal_type;
  std::string principal_id;
  std::string principal_name;
  std::string token_id;
  std::string model;
  std::string action;
  std::string resource_id;
  bool allowed = false;
  std::string reason;
  std::string rule;
  std::string eval_error;
  std::string policy_revision;
  std::string client_addr;
  std::string method;
  std::string path;
  std::string request_id;
  int64_t latency_us = 0;
  // Who asked, when it is not the principal: an AuthZEN PEP's service account asking about
  // a subject (DESIGN.md 6.1). Empty for /v1/check, where the token's account is the principal.
  std::string caller_id;
  std::string caller_name;
};

// One page of a newest-first listing. next_cursor is empty on the last page; otherwise pass
// it back to get the next (older) page. Cursors encode the last seq returned, so paging never
// repeats or skips a row while new rows are being inserted.
template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_cursor;
};

// Paging for plain listings. limit <= 0 means kDefaultPageLimit; the store caps it at
// kMaxPageLimit.
inline constexpr int kDefaultPageLimit = 50;
inline constexpr int kMaxPageLimit = 1000;
struct ListOptions {
  int limit = kDefaultPageLimit;
  std::string cursor;
};

// Filters combine with AND; empty/unset means "any".
struct DecisionQuery {
  std::string tenant_id;  // required
  std::string principal_id;
  std::optional<bool> allowed;
  std::string model;
  std::string action;
  int64_t since = 0;  // time >= since; 0 = unbounded
  int64_t until = 0;  // time < until; 0 = unbounded
  int limit = kDefaultPageLimit;
  std::string cursor;
};

// What the decision log keeps; 0 means unbounded.
struct Retention {
  int64_t max_age_ms = 0;
  int64_t max_rows_per_principal = 0;    // newest rows kept per (tenant, principal)
  int64_t max_unauthenticated_rows = 0;  // newest rows kept per tenant without a principal
};

struct AuditQuery {
  std::string tenant_id;  // required
  std::string target_id;    // empty = any
  std::string target_type;  // empty = any
  int limit = kDefaultPageLimit;
  std::string cursor;
};

// Thread-safe.
class TenantStore {
 public:
  virtual ~TenantStore() = default;
  // The tenant kDefaultTenantId, created with a fresh UUID tenant token on the first call.
  virtual StatusOr<Tenant> EnsureDefaultTenant() = 0;
  // A further tenant (operators' tooling; there is no HTTP route). Assigns a fresh tenant
  // token and created_at; id must be given. AlreadyExists when the id is taken.
  virtual StatusOr<Tenant> CreateTenant(const std::string& id, const std::string& name) = 0;
  // Every tenant, oldest first (installations hold a handful).
  virtual StatusOr<std::vector<Tenant>> ListTenants() = 0;
  virtual StatusOr<Tenant> GetTenant(const std::string& tenant_id) = 0;
  // Replaces the tenant token; the old one stops matching FindTenantByToken at once.
  virtual StatusOr<std::string> RotateTenantToken(const std::string& tenant_id,
                                                  const AuditEntry* audit = nullptr) = 0;
  // An indexed lookup; the caller should still compare the token in constant time.
  virtual StatusOr<Tenant> FindTenantByToken(const std::string& tenant_token) = 0;
};

// Thread-safe.
class UserStore {
 public:
  virtual ~UserStore() = default;
  // Assigns id (when empty), created_at and updated_at. AlreadyExists when the email is taken
  // in the tenant (case-insensitive).
  virtual StatusOr<User> CreateUser(const User& user, const AuditEntry* audit = nullptr) = 0;
  virtual StatusOr<User> GetUser(const std::string& tenant_id, const std::string& user_id) = 0;
  virtual StatusOr<User> FindUserByEmail(const std::string& tenant_id,
                                         const std::string& email) = 0;
  // Newest first.
  virtual StatusOr<Page<User>> ListUsers(const std::string& tenant_id,
                                         const ListOptions& options) = 0;
  // NotFound, or AlreadyExists when the new email is taken. Returns the updated user.
  virtual StatusOr<User> UpdateUser(const std::string& tenant_id, const std::string& user_id,
                                    const UserUpdate& update,
                                    const AuditEntry* audit = nullptr) = 0;
  // Deletes the user and its sessions. NotFound when absent.
  virtual Status DeleteUser(const std::string& tenant_id, const std::string& user_id,
                            const AuditEntry* audit = nullptr) = 0;
  virtual StatusOr<int64_t> CountUsers(const std::string& tenant_id) = 0;

  // Sessions. CreateSession assigns id (when empty) and created_at (when 0).
  virtual StatusOr<Session> CreateSession(const Session& session) = 0;
  // NotFound when absent or expired (expires_at <= now).
  virtual StatusOr<Session> FindSessionByHash(const std::string& token_hash) = 0;
  // NotFound when absent.
  virtual Status DeleteSession(const std::string& session_id) = 0;
  // Returns how many were deleted.
  virtual StatusOr<int64_t> DeleteExpiredSessions() = 0;
  virtual StatusOr<int64_t> DeleteSessionsOfUser(const std::string& tenant_id,
                                                 const std::string& user_id) = 0;
};

// Thread-safe.
class AccountStore {
 public:
  virtual ~AccountStore() = default;
  // Creates the account with account.policy_yaml as policy version 1 (actor = created_by).
  // Assigns id (when empty), created_at, updated_at, policy_version. AlreadyExists when a
  // non-deleted account of the tenant has the name.
  virtual StatusOr<ServiceAccount> CreateAccount(const ServiceAccount& account,
                                                 const AuditEntry* audit = nullptr) = 0;
  // NotFound for unknown ids and, unless include_deleted, soft-deleted accounts.
  virtual StatusOr<ServiceAccount> GetAccount(const std::string& tenant_id,
                                              const std::string& account_id,
                                              bool include_deleted = false) = 0;
  // With include_deleted, the live account wins, else the most recently deleted one.
  virtual StatusOr<ServiceAccount> GetAccountByName(const std::string& tenant_id,
                                                    const std::string& name,
                                                    bool include_deleted = false) = 0;
  // Live accounts, newest first, with token_count and last_used_at.
  virtual StatusOr<Page<ServiceAccount>> ListAccounts(const std::string& tenant_id,
                                                      const ListOptions& options) = 0;
  // NotFound (absent or deleted); AlreadyExists when renamed onto a live name.
  virtual StatusOr<ServiceAccount> UpdateAccount(const std::string& tenant_id,
                                                 const std::string& account_id,
                                                 const AccountUpdate& update,
                                                 const AuditEntry* audit = nullptr) = 0;
  // Sets deleted_at, hard-deletes the account's tokens and frees its name. Decision and audit
  // rows stay and still name it. NotFound when absent or already deleted.
  virtual Status SoftDeleteAccount(const std::string& tenant_id, const std::string& account_id,
                                   const AuditEntry* audit = nullptr) = 0;
  // Stores a new policy version and makes it current, in one transaction. When
  // expected_version is set and differs from the current version: FailedPrecondition.
  virtual StatusOr<PolicyVersion> SetPolicy(const std::string& tenant_id,
                                            const std::string& account_id,
                                            const std::string& policy_yaml,
                                            const std::string& actor_type,
                                            const std::string& actor_id,
                                            std::optional<int64_t> expected_version = {},
                                            const AuditEntry* audit = nullptr) = 0;
  // Newest first. Works for soft-deleted accounts too (their history stays readable).
  virtual StatusOr<std::vector<PolicyVersion>> ListPolicyVersions(
      const std::string& tenant_id, const std::string& account_id) = 0;
};

// Thread-safe.
class TokenStore {
 public:
  virtual ~TokenStore() = default;
  // token.id is the caller's public token id. Assigns created_at when 0. NotFound when the
  // account is absent or deleted; AlreadyExists when the id is taken.
  virtual Status CreateToken(const ApiTokenRecord& token, const AuditEntry* audit = nullptr) = 0;
  // Oldest first. NotFound when the account is absent or deleted.
  virtual StatusOr<std::vector<ApiTokenRecord>> ListTokens(const std::string& tenant_id,
                                                           const std::string& account_id) = 0;
  // NotFound when the token does not exist or belongs to another account.
  virtual Status DeleteToken(const std::string& tenant_id, const std::string& account_id,
                             const std::string& token_id,
                             const AuditEntry* audit = nullptr) = 0;
  // One indexed query (token joined with its live account). NotFound when the token is absent
  // or its account is deleted. Does not check expiry or the enabled flag: the caller decides.
  virtual StatusOr<TokenLookup> LookupToken(const std::string& token_id) = 0;
  // (token_id, millis) pairs, applied in one transaction; last_used_at only moves forward.
  // Unknown ids are ignored.
  virtual Status TouchTokensLastUsed(
      const std::vector<std::pair<std::string, int64_t>>& uses) = 0;
  // Tokens of the tenant's live accounts.
  virtual StatusOr<int64_t> CountTokens(const std::string& tenant_id) = 0;
};

// Thread-safe.
class AuditLog {
 public:
  virtual ~AuditLog() = default;
  // Fills entry->seq, and id/time when empty.
  virtual Status Append(AuditEntry* entry) = 0;
  // Newest first, paged.
  virtual StatusOr<Page<AuditEntry>> List(const AuditQuery& query) = 0;
};

// Thread-safe. AppendDecisions and Prune are meant for the server's decision-log writer and
// a background pruner; concurrent calls are serialised.
class DecisionLog {
 public:
  virtual ~DecisionLog() = default;
  // The whole batch as one write (group commit), all or nothing; the rows are durable when
  // this returns (against a process crash; see SqliteStore for the exact level) and Query
  // sees them. Fills each row's seq, and id/time when empty. On error no row of the batch is
  // stored. ResourceExhausted: the backend is too far behind writing what it accepted (its
  // backlog bound); the caller fails closed and may retry later.
  virtual Status AppendDecisions(std::vector<DecisionRow>* rows) = 0;
  // Newest first, paged; filters combine.
  virtual StatusOr<Page<DecisionRow>> Query(const DecisionQuery& query) = 0;
  // Deletes at most batch_size rows that retention no longer keeps: older than max_age_ms,
  // or beyond a principal's newest rows (each (tenant, principal) has its own budget, so no
  // caller's traffic pushes another's history out; rows without a principal, from invalid
  // credentials, have theirs). Oldest first. Returns how many were deleted; call again while
  // it returns batch_size.
  virtual StatusOr<int64_t> Prune(const Retention& retention, int batch_size) = 0;
  // principal_id empty = all of the tenant.
  virtual StatusOr<int64_t> CountDecisions(const std::string& tenant_id,
                                           const std::string& principal_id) = 0;
  // Bytes of appended rows not yet readable by a plain SQL reader of the database (0 when
  // AppendDecisions writes the table directly, and exactly 0 once every row is there). For
  // metrics.
  virtual int64_t DecisionBacklogBytes() const { return 0; }
};

// The directory (DESIGN.md 6.1): the protected application's own subjects (people, devices,
// ...: type, id, roles, properties) and resources (type, id, properties), for AuthZEN search
// candidates and for conditions on attributes the caller did not send. An entry is keyed by
// (tenant, kind, type, id); ids are the application's, any non-empty string.
enum class DirectoryKind { kSubject, kResource };
// "subject", "resource".
std::string_view DirectoryKindName(DirectoryKind kind);

// Bounds the store enforces on every entry (InvalidArgument beyond them).
inline constexpr size_t kMaxDirectoryNameBytes = 512;       // type and id
inline constexpr size_t kMaxDirectoryRoles = 64;
inline constexpr size_t kMaxDirectoryPropertyBytes = 64 << 10;  // properties as compact JSON

struct DirectoryEntry {
  std::string tenant_id;
  DirectoryKind kind = DirectoryKind::kSubject;
  std::string type;
  std::string id;
  std::vector<std::string> roles;  // subjects only; always empty for resources
  nlohmann::json properties = nlohmann::json::object();  // a JSON object
  int64_t updated_at = 0;  // assigned by the store
};

// One page of one (kind, type): the entries whose id sorts after `after_id` (bytewise; ""
// starts at the first), in id order. limit <= 0 means kDefaultPageLimit; capped at
// kMaxPageLimit. A caller pages on by passing the last id it got.
struct DirectoryQuery {
  std::string tenant_id;  // required
  DirectoryKind kind = DirectoryKind::kSubject;
  std::string type;  // required
  std::string after_id;
  int limit = kDefaultPageLimit;
};

// Thread-safe.
class DirectoryStore {
 public:
  virtual ~DirectoryStore() = default;
  // Creates or replaces every entry (all or nothing, one transaction; an import is one call),
  // assigning updated_at. InvalidArgument (nothing stored) when an entry has an empty or
  // over-long type or id, properties that are not an object or over the bounds, roles on a
  // resource, or an empty role name. One audit row for the whole call when `audit` is given.
  virtual Status PutDirectoryEntries(const std::vector<DirectoryEntry>& entries,
                                     const AuditEntry* audit = nullptr) = 0;
  // NotFound when absent.
  virtual StatusOr<DirectoryEntry> GetDirectoryEntry(const std::string& tenant_id, DirectoryKind kind,
                                                     const std::string& type, const std::string& id) = 0;
  virtual StatusOr<std::vector<DirectoryEntry>> ListDirectoryEntries(const DirectoryQuery& query) = 0;
  // NotFound when absent.
  virtual Status DeleteDirectoryEntry(const std::string& tenant_id, DirectoryKind kind, const std::string& type,
                                      const std::string& id, const AuditEntry* audit = nullptr) = 0;
};

// Thread-safe.
class Health {
 public:
  virtual ~Health() = default;
  // A real write (in a transaction) to check that the database is writable, for /readyz.
  virtual Status Ping() = 0;
};

// A change that affects decisions, as the caches of every process sharing the store must see
// it (DESIGN.md section 10).
struct Change {
  enum class Kind {
    kAccount,       // enabled, renamed, attributes or permissions changed, or deleted
    kToken,         // deleted
    kTokenCreated,  // an id no process may keep remembering as unknown
    kTenant,        // created or its tenant token rotated
    kEverything,    // changes may have been missed: drop every cache
  };
  Kind kind = Kind::kEverything;
  std::string tenant_id;
  std::string id;  // the account, token or tenant id; empty for kEverything
};

// Thread-safe.
class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;
  // Calls `listener`, from a thread of the store, for the changes other processes sharing the
  // store make (this process's own may come too: invalidating twice is harmless), at most a
  // second after they commit while the database is reachable. Call once, before serving;
  // Subscribe({}) stops the calls (and waits for one under way) before the listener goes.
  // A store only one process uses (SQLite: the data directory is locked) never calls it.
  virtual void Subscribe(std::function<void(const Change&)> listener) {}
};

// Everything at once: what server/ holds.
class Store : public TenantStore,
              public UserStore,
              public AccountStore,
              public TokenStore,
              public AuditLog,
              public DecisionLog,
              public DirectoryStore,
              public Health,
              public ChangeFeed {};

}  // namespace warden::store
