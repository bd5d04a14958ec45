// SqliteStore: the embedded SQLite implementation of every store interface (store/store.h).
//
// One database file, WAL mode, foreign keys on, numbered migrations applied at Open (inside
// transactions; a database whose schema is newer than this code is refused). Connections:
//   - admin writer (synchronous=FULL): every admin change is fsynced before it is
//     acknowledged.
//   - decision-log writer (synchronous=NORMAL). AppendDecisions does not commit to SQLite: it
//     appends the rows to the decision journal, a series of segment files
//     (`<database>-decisions.<n>`, each a DecisionJournal, decision_journal.h), which is in
//     the OS page cache when it returns, so the rows survive a crash of the process (kill -9),
//     not a power loss; that is the durability the decision log promises. A background thread
//     (the mover) reads journaled rows every 5 ms while rows arrive (50 ms when idle) into
//     per-principal open chunks held in memory (open_chunks.h) and writes a chunk into
//     decision_chunk (decision_chunk.h) once it is full (512 rows) or Options::decision_open_age_ms
//     old, or when the open chunks pass Options::decision_open_bytes (the oldest go first), or
//     when the journal passes Options::decision_journal_soft_bytes (the chunks holding rows of
//     its oldest segment go). A segment is deleted once every row in it is in decision_chunk.
//     decision_journal.last_seq is the durable watermark: every row up to it is stored (or was
//     pruned); Open() replays the segments, skipping those rows and, per principal, the rows up
//     to its newest stored seq (a principal's chunks are written in seq order), writes the
//     rest and starts a new segment: exactly one row per appended row, also after kill -9.
//     Reads of the decision log (Query, CountDecisions) see every appended row: they read the
//     journal's tail into the open chunks and merge them with the table.
//     The check path never moves rows: when the mover is behind (unread journal bytes over
//     Options::decision_max_backlog_bytes, or the journal over decision_max_journal_bytes),
//     AppendDecisions fails with ResourceExhausted and stores nothing (the server answers 503).
//     The two
//     writers share one in-process write mutex so they queue on it instead of sleeping in
//     SQLite's busy handler.
//   - a small pool of read-only connections, each with its own mutex, so reads never queue
//     behind writes (WAL readers see the last committed snapshot).
//   - a checkpoint connection used only by Checkpoint().
// Automatic checkpoints are off on every connection (wal_autocheckpoint=0): a checkpoint
// inside a writer's commit caused latency spikes on the check path. The server must call
// Checkpoint() on a schedule (e.g. every second): it runs a PASSIVE checkpoint, which never
// blocks writers, and a TRUNCATE checkpoint (under the write mutex, so it briefly holds off
// writers) when the WAL file has grown past Options::wal_truncate_bytes.
//
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/decision_journal.h"
#include "store/open_chunks.h"
#include "store/store.h"

namespace warden::store {

class Connection;  // store/sqlite_db.h

class SqliteStore final : public Store {
 public:
  struct Options {
    int read_connections = 3;
    // Page cache per connection, KiB (an upper bound; SQLite fills it as pages are read).
    // Kept small: the budget of the whole server with 10,000 accounts and 100,000 tokens is
    // 64 MiB. Worst case with the defaults: 1 MiB x (admin + readers) + 2 MiB for the decision
    // log writer. The writer had 8 MiB while it inserted a chunk per principal every 5 ms; chunks
    // held open insert ~100x fewer index entries, and the memory went to the open chunks. The
    // first pass over 100,000 tokens filled 2 MiB readers and the admin connection (its
    // last_used_at writes) to 6.7 MiB at the peak; a token lookup reads three or four pages,
    // and the interior ones stay cached in 1 MiB.
    int cache_kib = 1024;
    int log_cache_kib = 2048;
    int busy_timeout_ms = 5000;
    // Checkpoint() truncates the WAL when it is larger than this.
    int64_t wal_truncate_bytes = 64ll << 20;
    // False for tools that change admin state beside a running server (warden admin): the
    // decision journal belongs to the server, so it is neither opened nor moved, and the
    // decision-log methods answer FailedPrecondition.
    bool decision_log = true;
    // The decision log's bounds (see above). A segment is started once the current one
    // passes decision_segment_bytes.
    int64_t decision_segment_bytes = 8ll << 20;
    // 8 MiB and 30 s: with 10,000 accounts in a Zipf mix, the tail's chunks then hold enough
    // rows to amortise their dictionary and index entries (4 MiB and 5 s: ~78 bytes a
    // decision; 16 MiB and 30 s: ~50, 40.8 with schema version 6; 8 MiB: 46.6, and 42.4 once
    // the quiet chunks are compacted before any is sealed; docs/benchmarks.md, sessions 9
    // and 13). 16 MiB put the first pass over 100,000 tokens above the 64 MiB budget.
    int64_t decision_open_bytes = 8ll << 20;
    int64_t decision_open_age_ms = 30000;
    int64_t decision_journal_soft_bytes = 64ll << 20;
    int64_t decision_max_backlog_bytes = 64ll << 20;
    int64_t decision_max_journal_bytes = 256ll << 20;
    // False: no background mover (tests of the backlog bound); reads and FlushDecisions move.
    bool decision_mover = true;
  };

  // The schema version this code creates and understands.
  static int SchemaVersion();

  // Opens (creating when absent) the database at `path` and migrates it. FailedPrecondition
  // when the file's schema is newer than SchemaVersion(); Unavailable when it cannot be opened.
  // `clock` must outlive the store.
  static StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path, const Clock& clock,
                                                     Options options);
  static StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                     const Clock& clock) {
    return Open(path, clock, Options());
  }
  ~SqliteStore() override;

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Creates the accounts (ids assigned where empty, written back) and then the tokens (which
  // may name those ids) in one transaction: the rows CreateAccount and CreateToken write,
  // without audit rows. For fixtures and bulk imports (bench/warden_seed: 10,000 accounts and
  // 100,000 tokens in seconds instead of one fsync each). All or nothing.
  Status ImportAccounts(std::vector<ServiceAccount>* accounts, const std::vector<ApiTokenRecord>& tokens);
  // PASSIVE checkpoint, then TRUNCATE when the WAL is larger than wal_truncate_bytes.
  Status Checkpoint();
  // Writes every journaled decision row into the decision_chunk table, open chunks included,
  // and deletes the segments that leaves behind (tests, tools, shutdown).
  Status FlushDecisions();
  // One pass of the background mover: reads the journal into the open chunks and writes the
  // chunks that are full, old or over a bound (bench/store_bench).
  Status MoveDecisions();
  int64_t DecisionBacklogBytes() const override;
  // Size of the -wal file in bytes (0 when absent); for metrics and tests.
  int64_t WalSizeBytes() const;
  const std::string& path() const { return path_; }

  // TenantStore
  StatusOr<Tenant> EnsureDefaultTenant() override;
  StatusOr<Tenant> CreateTenant(const std::string& id, const std::string& name) override;
  StatusOr<std::vector<Tenant>> ListTenants() override;
  StatusOr<Tenant> GetTenant(const std::string& tenant_id) override;
  StatusOr<std::string> RotateTenantToken(const std::string& tenant_id,
                                          const AuditEntry* audit = nullptr) override;
  StatusOr<Tenant> FindTenantByToken(const std::string& tenant_token) override;

  // UserStore
  StatusOr<User> CreateUser(const User& user, const AuditEntry* audit = nullptr) override;
  StatusOr<User> GetUser(const std::string& tenant_id, const std::string& user_id) override;
  StatusOr<User> FindUserByEmail(const std::string& tenant_id, const std::string& email) override;
  StatusOr<Page<User>> ListUsers(const std::string& tenant_id,
                                 const ListOptions& options) override;
  StatusOr<User> UpdateUser(const std::string& tenant_id, const std::string& user_id,
                            const UserUpdate& update, const AuditEntry* audit = nullptr) override;
  Status DeleteUser(const std::string& tenant_id, const std::string& user_id,
                    const AuditEntry* audit = nullptr) override;
  StatusOr<int64_t> CountUsers(const std::string& tenant_id) override;
  StatusOr<Session> CreateSession(const Session& session) override;
  StatusOr<Session> FindSessionByHash(const std::string& token_hash) override;
  Status DeleteSession(const std::string& session_id) override;
  StatusOr<int64_t> DeleteExpiredSessions() override;
  StatusOr<int64_t> DeleteSessionsOfUser(const std::string& tenant_id,
                                         const std::string& user_id) override;

  // AccountStore
  StatusOr<ServiceAccount> CreateAccount(const ServiceAccount& account,
                                         const AuditEntry* audit = nullptr) override;
  StatusOr<ServiceAccount> GetAccount(const std::string& tenant_id,
                                      const std::string& account_id,
                                      bool include_deleted = false) override;
  StatusOr<ServiceAccount> GetAccountByName(const std::string& tenant_id,
                                            const std::string& name,
                                            bool include_deleted = false) override;
  StatusOr<Page<ServiceAccount>> ListAccounts(const std::string& tenant_id,
                                              const ListOptions& options) override;
  StatusOr<ServiceAccount> UpdateAccount(const std::string& tenant_id,
                                         const std::string& account_id,
                                         const AccountUpdate& update,
                                         const AuditEntry* audit = nullptr) override;
  Status SoftDeleteAccount(const std::string& tenant_id, const std::string& account_id,
                           const AuditEntry* audit = nullptr) override;
  StatusOr<PolicyVersion> SetPolicy(const std::string& tenant_id, const std::string& account_id,
                                    const std::string& policy_yaml,
                                    const std::string& actor_type, const std::string& actor_id,
                                    std::optional<int64_t> expected_version = {},
                                    const AuditEntry* audit = nullptr) override;
  StatusOr<std::vector<PolicyVersion>> ListPolicyVersions(const std::string& tenant_id,
                                                          const std::string& account_id) override;

  // TokenStore
  Status CreateToken(const ApiTokenRecord& token, const AuditEntry* audit = nullptr) override;
  StatusOr<std::vector<ApiTokenRecord>> ListTokens(const std::string& tenant_id,
                                                   const std::string& account_id) override;
  Status DeleteToken(const std::string& tenant_id, const std::string& account_id,
                     const std::string& token_id, const AuditEntry* audit = nullptr) override;
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
  StatusOr<int64_t> CountDecisions(const std::string& tenant_id,
                                   const std::string& principal_id) override;

  // Health
  Status PutDirectoryEntries(const std::vector<DirectoryEntry>& entries,
                             const AuditEntry* audit = nullptr) override;
  StatusOr<DirectoryEntry> GetDirectoryEntry(const std::string& tenant_id, DirectoryKind kind,
                                             const std::string& type, const std::string& id) override;
  StatusOr<std::vector<DirectoryEntry>> ListDirectoryEntries(const DirectoryQuery& query) override;
  Status DeleteDirectoryEntry(const std::string& tenant_id, DirectoryKind kind, const std::string& type,
                              const std::string& id, const AuditEntry* audit = nullptr) override;

  Status Ping() override;

 private:
  class ReadLease;  // a locked read connection, released on destruction

  SqliteStore(std::string path, const Clock& clock, Options options);
  ReadLease AcquireReader() const;

  const std::string path_;
  const Clock& clock_;
  const Options options_;

  // Held by any write transaction on admin_ or log_ (and the TRUNCATE checkpoint), so the two
  // writer connections queue in-process rather than in SQLite's sleeping busy handler.
  // Lock order: write_mu_ before a connection's own mutex.
  mutable std::mutex write_mu_;
  // The frame of an admin change: write_mu_, one transaction of the admin connection, `body`
  // (returning Status or StatusOr<T>), then a commit when it succeeded (a rollback otherwise).
  template <typename Body>
  auto AdminWrite(Body&& body);  // defined in sqlite_store.cc, its only user
  std::unique_ptr<Connection> admin_;       // synchronous=FULL
  std::unique_ptr<Connection> log_;         // synchronous=NORMAL
  std::unique_ptr<Connection> checkpointer_;
  std::vector<std::unique_ptr<Connection>> readers_;
  mutable std::atomic<uint32_t> next_reader_{0};

  // The decision journal and its mover (see the top of this file). Lock order: ingest_mu_,
  // write_mu_, append_mu_ (AppendDecisions takes append_mu_ alone).
  Status OpenJournal();
  // Schema version 4 replaced decision_log by decision_chunk: converts the rows an older
  // warden left there, a transaction of rows at a time, then drops the table.
  Status ConvertDecisionLog();
  // A journal segment: one DecisionJournal file. The appender writes the last one; the mover
  // reads them in order and deletes the ones whose rows are all stored.
  struct Segment {
    uint64_t number = 0;
    std::string path;
    std::unique_ptr<DecisionJournal> file;
    int64_t last_seq = 0;  // the newest seq appended to it; guarded by append_mu_
  };
  StatusOr<Segment> NewSegment(uint64_t number) const;
  // A mover pass (ingest_mu_ held): reads journaled rows into open_ (all of what is appended
  // when read_all, else about a transaction's worth), seals what is full, old or over a bound
  // (everything when seal_all), writes the sealed chunks and the watermark in one transaction,
  // then deletes the segments left with no unstored row.
  Status MovePassLocked(bool read_all, bool seal_all);
  Status WriteSealedLocked();
  void DeleteStoredSegmentsLocked();
  // During Open() only: rows of the replayed journal that are already stored.
  std::function<bool(const DecisionRow&)> replay_skip_;
  void IngestLoop();

  std::mutex append_mu_;
  int64_t next_seq_ = 1;  // guarded by append_mu_
  std::deque<Segment> segments_;  // guarded by append_mu_; only the mover removes, so it reads files unlocked
  uint64_t next_segment_ = 1;     // guarded by append_mu_
  // Journal bytes appended, read by the mover, and deleted (with their segments), ever:
  // the backlog bound and the metric, without a lock.
  std::atomic<int64_t> appended_bytes_{0};
  std::atomic<int64_t> read_bytes_{0};
  std::atomic<int64_t> deleted_bytes_{0};
  std::atomic<int64_t> held_bytes_{0};  // open_.MemoryBytes() after the last pass
  // Every row with seq <= durable_seq_ is in decision_chunk (or was pruned): the persisted
  // watermark (decision_journal.last_seq). Written under ingest_mu_ and write_mu_.
  std::atomic<int64_t> durable_seq_{0};

  std::mutex ingest_mu_;
  // The mover's position, guarded by ingest_mu_: the segment and offset it reads next, and
  // the newest seq it has read.
  uint64_t read_segment_ = 0;
  int64_t read_offset_ = DecisionJournal::kHeaderBytes;
  int64_t read_seq_ = 0;
  OpenChunks open_;                       // guarded by ingest_mu_
  std::vector<DecisionRow> ingest_rows_;  // guarded by ingest_mu_; reused (string capacity)
  // Rows per (tenant_id '\0' principal_id) in decision_chunk, kept by every chunk write and
  // delete: which principals are over their retention budget, without a scan. A hint (a
  // rolled-back transaction leaves it high): Prune counts a candidate exactly before
  // deleting. Guarded by write_mu_.
  std::unordered_map<std::string, int64_t> principal_rows_;
  // The age and row passes of Prune (write_mu_ held, inside its transaction).
  StatusOr<int64_t> PruneByAgeLocked(int64_t time_cutoff, int64_t budget);
  StatusOr<int64_t> PruneByRowsLocked(const Retention& retention, int64_t budget);
  std::mutex ingester_mu_;
  std::condition_variable ingester_cv_;
  bool ingester_stop_ = false;  // guarded by ingester_mu_
  std::thread ingester_;
};

}  // namespace warden::store
