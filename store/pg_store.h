// PgStore: the PostgreSQL implementation of every store interface (store/store.h), for several
// warden replicas sharing one database (DESIGN.md section 10).
//
// Open(url) connects, applies the numbered migrations (store/pg_schema.h) under an advisory
// lock, and serves from a bounded pool of connections (store/pg_conn.h). A connection the
// server closed (restart, pg_terminate_backend, network) is dropped and reopened with
// exponential backoff; meanwhile calls answer Unavailable, so the server answers 503 for what
// needs the store and keeps answering from its caches. A call whose statement fails because its
// connection was lost before anything was committed is retried once on a fresh connection.
//
// Writes: every admin change is one transaction committed with synchronous_commit on (durable
// when acknowledged) that holds advisory lock kAdminLock, so admin writes of all replicas are
// serialised (seq order is commit order; read-modify-write updates do not race). A change that
// affects decisions also inserts a `changes` row and sends NOTIFY in that transaction.
// Subscribe() starts a thread with its own connection that LISTENs and, at least every
// kPollInterval (and at once on a notification), reads the `changes` rows after the last one
// it saw, so a notification lost while its connection was down is found by the next poll.
//
// Decision log: AppendDecisions is one statement (one round trip, one commit) per batch: the
// server's logger batches concurrent checks (group commit), and the rows are durable (in
// PostgreSQL's WAL, fsynced) when it returns. Seqs are taken from the decision_seq row, locked
// until commit, so seq order is commit order across replicas and cursors never skip a row.
// decision_log is partitioned by day; Prune drops whole days older than max_age (one DDL,
// however many rows: the count returned may then exceed batch_size) and deletes rows in
// batches otherwise. Text that PostgreSQL cannot store (NUL, invalid UTF-8) is stored with
// U+FFFD in its place.
//
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace warden::store {

class DecisionJournal;
class PgConnection;
class PgPool;

class PgStore final : public Store {
 public:
  struct Options {
    int pool_size = 8;
    // Change feed: the longest time between two polls of `changes`.
    int64_t poll_interval_ms = 250;
    // `changes` rows older than this are deleted by Prune; a listener that was down longer
    // reports kEverything.
    int64_t changes_keep_ms = 3'600'000;
    // Non-empty: a local file (store/decision_journal.h) that takes the decision rows
    // AppendDecisions cannot commit because PostgreSQL is unreachable, so that checks of
    // cached tokens are still answered, durable against a crash of this process as SQLite's
    // journal is; a thread moves them into PostgreSQL once it is back (their seqs are given
    // then; Query sees them from then on). Empty: such appends fail with Unavailable.
    std::string spill_path;
  };

  static int SchemaVersion();
  // Unavailable when the server cannot be reached; FailedPrecondition when the database's
  // schema is newer than SchemaVersion(). `clock` must outlive the store.
  static StatusOr<std::unique_ptr<PgStore>> Open(const std::string& url, const Clock& clock, Options options);
  static StatusOr<std::unique_ptr<PgStore>> Open(const std::string& url, const Clock& clock) {
    return Open(url, clock, Options());
  }
  ~PgStore() override;
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  // As SqliteStore::ImportAccounts: accounts, then tokens, in one transaction, no audit rows.
  Status ImportAccounts(std::vector<ServiceAccount>* accounts, const std::vector<ApiTokenRecord>& tokens);
  // Connections of the pool currently open (metrics, tests).
  int OpenConnections() const;

  // TenantStore
  StatusOr<Tenant> EnsureDefaultTenant() override;
  StatusOr<Tenant> CreateTenant(const std::string& id, const std::string& name) override;
  StatusOr<std::vector<Tenant>> ListTenants() override;
  StatusOr<Tenant> GetTenant(const std::string& tenant_id) override;
  StatusOr<std::string> RotateTenantToken(const std::string& tenant_id, const AuditEntry* audit = nullptr) override;
  StatusOr<Tenant> FindTenantByToken(const std::string& tenant_token) override;

  // UserStore
  StatusOr<User> CreateUser(const User& user, const AuditEntry* audit = nullptr) override;
  StatusOr<User> GetUser(const std::string& tenant_id, const std::string& user_id) override;
  StatusOr<User> FindUserByEmail(const std::string& tenant_id, const std::string& email) override;
  StatusOr<Page<User>> ListUsers(const std::string& tenant_id, const ListOptions& options) override;
  StatusOr<User> UpdateUser(const std::string& tenant_id, const std::string& user_id, const UserUpdate& update,
                            const AuditEntry* audit = nullptr) override;
  Status DeleteUser(const std::string& tenant_id, const std::string& user_id, const AuditEntry* audit = nullptr) override;
  StatusOr<int64_t> CountUsers(const std::string& tenant_id) override;
  StatusOr<Session> CreateSession(const Session& session) override;
  StatusOr<Session> FindSessionByHash(const std::string& token_hash) override;
  Status DeleteSession(const std::string& session_id) override;
  StatusOr<int64_t> DeleteExpiredSessions() override;
  StatusOr<int64_t> DeleteSessionsOfUser(const std::string& tenant_id, const std::string& user_id) override;

  // AccountStore
  StatusOr<ServiceAccount> CreateAccount(const ServiceAccount& account, const AuditEntry* audit = nullptr) override;
  StatusOr<ServiceAccount> GetAccount(const std::string& tenant_id, const std::string& account_id,
                                      bool include_deleted = false) override;
  StatusOr<ServiceAccount> GetAccountByName(const std::string& tenant_id, const std::string& name,
                                            bool include_deleted = false) override;
  StatusOr<Page<ServiceAccount>> ListAccounts(const std::string& tenant_id, const ListOptions& options) override;
  StatusOr<ServiceAccount> UpdateAccount(const std::string& tenant_id, const std::string& account_id,
                                         const AccountUpdate& update, const AuditEntry* audit = nullptr) override;
  Status SoftDeleteAccount(const std::string& tenant_id, const std::string& account_id,
                           const AuditEntry* audit = nullptr) override;
  StatusOr<PolicyVersion> SetPolicy(const std::string& tenant_id, const std::string& account_id,
                                    const std::string& policy_yaml, const std::string& actor_type,
                                    const std::string& actor_id, std::optional<int64_t> expected_version = {},
                                    const AuditEntry* audit = nullptr) override;
  StatusOr<std::vector<PolicyVersion>> ListPolicyVersions(const std::string& tenant_id,
                                                          const std::string& account_id) override;

  // TokenStore
  Status CreateToken(const ApiTokenRecord& token, const AuditEntry* audit = nullptr) override;
  StatusOr<std::vector<ApiTokenRecord>> ListTokens(const std::string& tenant_id, const std::string& account_id) override;
  Status DeleteToken(const std::string& tenant_id, const std::string& account_id, const std::string& token_id,
                     const AuditEntry* audit = nullptr) override;
  StatusOr<TokenLookup> LookupToken(const std::string& token_id) override;
  Status TouchTokensLastUsed(const std::vector<std::pair<std::string, int64_t>>& uses) override;
  StatusOr<int64_t> CountTokens(const std::string& tenant_id) override;

  // AuditLog
  Status Append(AuditEntry* entry) override;
  StatusOr<Page<AuditEntry>> List(const AuditQuery& query) override;

  // DecisionLog
  Status AppendDecisions(std::vector<DecisionRow>* rows) override;
  StatusOr<Page<DecisionRow>> Query(const DecisionQuery& query) override;
  StatusOr<int64_t> Prune(const Retention& retention, int batch_size) override;
  StatusOr<int64_t> CountDecisions(const std::string& tenant_id, const std::string& principal_id) override;
  // Bytes of spilled rows not yet in PostgreSQL.
  int64_t DecisionBacklogBytes() const override;

  // DirectoryStore
  Status PutDirectoryEntries(const std::vector<DirectoryEntry>& entries,
                             const AuditEntry* audit = nullptr) override;
  StatusOr<DirectoryEntry> GetDirectoryEntry(const std::string& tenant_id, DirectoryKind kind,
                                             const std::string& type, const std::string& id) override;
  StatusOr<std::vector<DirectoryEntry>> ListDirectoryEntries(const DirectoryQuery& query) override;
  Status DeleteDirectoryEntry(const std::string& tenant_id, DirectoryKind kind, const std::string& type,
                              const std::string& id, const AuditEntry* audit = nullptr) override;

  // Health
  Status Ping() override;

  // ChangeFeed
  void Subscribe(std::function<void(const Change&)> listener) override;

 private:
  PgStore(std::string url, const Clock& clock, Options options);

  // Runs `body(connection)` on a pooled connection, once more on a fresh one when the first
  // failed because its connection was lost.
  template <typename Body>
  auto WithConnection(Body&& body);
  // An admin change: a transaction holding kAdminLock around `body`, committed when it
  // succeeded; retried once when the connection was lost before COMMIT was sent.
  template <typename Body>
  auto AdminWrite(Body&& body);

  // Creates the day partitions of decision_log that `days` name and are not known to exist.
  Status EnsurePartitions(PgConnection& c, const std::set<int64_t>& days);
  StatusOr<int64_t> PruneLocked(PgConnection& c, const Retention& retention, int64_t budget);
  void ListenLoop();
  void StopListening();
  // One statement committing `rows` (seqs filled).
  Status InsertDecisions(std::vector<DecisionRow>* rows);
  void SpillLoop();

  const std::string url_;
  const Clock& clock_;
  const Options options_;
  std::unique_ptr<PgPool> pool_;

  std::mutex partitions_mu_;
  std::set<int64_t> partitions_;  // days whose partition exists; guarded by partitions_mu_

  std::mutex feed_mu_;  // Subscribe and StopListening, which may come from two threads
  std::function<void(const Change&)> listener_;  // set by Subscribe before listen_ starts
  int64_t changes_seen_ = 0;                     // the newest `changes` seq at Open, then listen_'s
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;  // eventfd that wakes listen_ to stop
  std::thread listen_;

  std::unique_ptr<DecisionJournal> spill_;  // null without Options::spill_path
  std::mutex spill_mu_;  // appends to spill_ and its Reset
  std::condition_variable spill_cv_;
  bool spill_stop_ = false;    // guarded by spill_mu_
  std::thread spiller_;
};

}  // namespace warden::store
