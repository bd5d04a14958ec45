#include "store/sqlite_store.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <system_error>
#include <unordered_map>

#include "common/ids.h"
#include "store/decision_chunk.h"
#include "store/row_codec.h"
#include "store/schema.h"
#include "store/sqlite_db.h"

namespace warden::store {

template <typename Body>
auto SqliteStore::AdminWrite(Body&& body) {
  using Result = decltype(body(std::declval<Connection&>()));
  std::lock_guard<std::mutex> lock(write_mu_);
  Transaction tx(admin_.get());
  if (!tx.status().ok()) return Result(tx.status());
  Result result = body(*admin_);
  if (!result.ok()) return result;
  Status committed = tx.Commit();
  if (!committed.ok()) return Result(committed);
  return result;
}

namespace {

// The key of principal_rows_.
std::string PrincipalKey(std::string_view tenant_id, std::string_view principal_id) {
  std::string key(tenant_id);
  key.push_back('\0');
  key.append(principal_id);
  return key;
}

}  // namespace
namespace {

using nlohmann::json;


// Takes items from rows fetched with LIMIT limit+1 and sets next_cursor when there are more.
// Steps `s` (which selects at most limit + 1 rows, newest first) into a page: `read(s, &seq)`
// turns the current row into a T; the extra row only tells that a next page exists.
template <typename T, typename Read>
StatusOr<Page<T>> ReadPage(Stmt& s, const char* what, int limit, Read read) {
  Page<T> page;
  std::vector<int64_t> seqs;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step(what));
    if (!row) break;
    int64_t seq = 0;
    ASSIGN_OR_RETURN(T item, read(s, &seq));
    page.items.push_back(std::move(item));
    seqs.push_back(seq);
  }
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    page.next_cursor = EncodeCursor(seqs[limit - 1]);
  }
  return page;
}

// ---- row readers (column lists and readers kept side by side) ----

constexpr char kUserCols[] =
    "seq, id, tenant_id, email, name, roles, attributes, enabled, password_hash, created_at, "
    "updated_at";

StatusOr<User> ReadUser(const Stmt& s, int64_t* seq) {
  User u;
  *seq = s.Int(0);
  u.id = s.Text(1);
  u.tenant_id = s.Text(2);
  u.email = s.Text(3);
  u.name = s.Text(4);
  ASSIGN_OR_RETURN(u.roles, ParseRoles(s.Text(5)));
  ASSIGN_OR_RETURN(u.attributes, ParseJsonColumn(s.Text(6), "attributes"));
  u.enabled = s.Bool(7);
  u.password_hash = s.Text(8);
  u.created_at = s.Int(9);
  u.updated_at = s.Int(10);
  return u;
}

// 15 columns, starting at `col`.
constexpr char kAccountCols[] =
    "a.seq, a.id, a.tenant_id, a.name, a.description, a.enabled, a.policy_yaml, "
    "a.policy_version, a.attributes, a.created_at, a.created_by_type, a.created_by_id, "
    "a.updated_at, a.deleted_at, "
    "(SELECT COUNT(*) || ',' || COALESCE(MAX(t.last_used_at), 0) FROM api_tokens t "
    "WHERE t.account_id = a.id)";
constexpr int kAccountColCount = 15;

StatusOr<ServiceAccount> ReadAccount(const Stmt& s, int col, int64_t* seq) {
  ServiceAccount a;
  *seq = s.Int(col + 0);
  a.id = s.Text(col + 1);
  a.tenant_id = s.Text(col + 2);
  a.name = s.Text(col + 3);
  a.description = s.Text(col + 4);
  a.enabled = s.Bool(col + 5);
  a.policy_yaml = s.Text(col + 6);
  a.policy_version = s.Int(col + 7);
  ASSIGN_OR_RETURN(a.attributes, ParseJsonColumn(s.Text(col + 8), "attributes"));
  a.created_at = s.Int(col + 9);
  a.created_by_type = s.Text(col + 10);
  a.created_by_id = s.Text(col + 11);
  a.updated_at = s.Int(col + 12);
  a.deleted_at = s.Int(col + 13);
  std::string stats = s.Text(col + 14);  // "count,max_last_used"
  size_t comma = stats.find(',');
  if (comma != std::string::npos) {
    std::from_chars(stats.data(), stats.data() + comma, a.token_count);
    std::from_chars(stats.data() + comma + 1, stats.data() + stats.size(), a.last_used_at);
  }
  return a;
}

// Account columns without the token statistics (for the check hot path).
constexpr char kAccountColsNoStats[] =
    "a.seq, a.id, a.tenant_id, a.name, a.description, a.enabled, a.policy_yaml, "
    "a.policy_version, a.attributes, a.created_at, a.created_by_type, a.created_by_id, "
    "a.updated_at, a.deleted_at, ''";

constexpr char kTokenCols[] =
    "t.id, t.tenant_id, t.account_id, t.name, t.secret_hash, t.display_prefix, t.created_at, "
    "t.created_by_type, t.created_by_id, t.last_used_at, t.expires_at";
constexpr int kTokenColCount = 11;

ApiTokenRecord ReadToken(const Stmt& s, int col) {
  ApiTokenRecord t;
  t.id = s.Text(col + 0);
  t.tenant_id = s.Text(col + 1);
  t.account_id = s.Text(col + 2);
  t.name = s.Text(col + 3);
  t.secret_hash = s.Blob(col + 4);
  t.display_prefix = s.Text(col + 5);
  t.created_at = s.Int(col + 6);
  t.created_by_type = s.Text(col + 7);
  t.created_by_id = s.Text(col + 8);
  t.last_used_at = s.Int(col + 9);
  t.expires_at = s.Int(col + 10);
  return t;
}

constexpr char kSessionCols[] =
    "id, tenant_id, user_id, token_hash, csrf_token, created_at, expires_at";

Session ReadSession(const Stmt& s) {
  Session x;
  x.id = s.Text(0);
  x.tenant_id = s.Text(1);
  x.user_id = s.Text(2);
  x.token_hash = s.Text(3);
  x.csrf_token = s.Text(4);
  x.created_at = s.Int(5);
  x.expires_at = s.Int(6);
  return x;
}

constexpr char kAuditCols[] =
    "seq, id, tenant_id, time, actor_type, actor_id, action, target_type, target_id, "
    "target_name, details";

StatusOr<AuditEntry> ReadAudit(const Stmt& s) {
  AuditEntry e;
  e.seq = s.Int(0);
  e.id = s.Text(1);
  e.tenant_id = s.Text(2);
  e.time = s.Int(3);
  e.actor_type = s.Text(4);
  e.actor_id = s.Text(5);
  e.action = s.Text(6);
  e.target_type = s.Text(7);
  e.target_id = s.Text(8);
  e.target_name = s.Text(9);
  ASSIGN_OR_RETURN(e.details, ParseJsonColumn(s.Text(10), "audit details"));
  return e;
}

std::string Sql(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) out += p;
  return out;
}

// ---- shared queries, usable on any connection (inside or outside a transaction) ----

StatusOr<ServiceAccount> LoadAccount(Connection& c, const std::string& tenant_id,
                                     const std::string& account_id, bool include_deleted) {
  ASSIGN_OR_RETURN(Stmt s, c.Prepare(Sql({"SELECT ", kAccountCols,
                                          " FROM service_accounts a WHERE a.tenant_id = ? AND "
                                          "a.id = ? AND (? OR a.deleted_at = 0)"})));
  s.Bind(1, tenant_id).Bind(2, account_id).Bind(3, include_deleted);
  ASSIGN_OR_RETURN(bool row, s.Step("reading a service account"));
  if (!row) return NotFoundError("service account not found");
  int64_t seq;
  return ReadAccount(s, 0, &seq);
}

StatusOr<User> LoadUser(Connection& c, const std::string& tenant_id, const std::string& user_id) {
  ASSIGN_OR_RETURN(Stmt s, c.Prepare(Sql({"SELECT ", kUserCols,
                                          " FROM users WHERE tenant_id = ? AND id = ?"})));
  s.Bind(1, tenant_id).Bind(2, user_id);
  ASSIGN_OR_RETURN(bool row, s.Step("reading a user"));
  if (!row) return NotFoundError("user not found");
  int64_t seq;
  return ReadUser(s, &seq);
}

StatusOr<Tenant> LoadTenant(Connection& c, std::string_view where, const std::string& value) {
  ASSIGN_OR_RETURN(Stmt s, c.Prepare(Sql({"SELECT id, name, tenant_token, created_at FROM "
                                          "tenants WHERE ",
                                          where, " = ?"})));
  s.Bind(1, value);
  ASSIGN_OR_RETURN(bool row, s.Step("reading a tenant"));
  if (!row) return NotFoundError("tenant not found");
  return Tenant{s.Text(0), s.Text(1), s.Text(2), s.Int(3)};
}

}  // namespace

// A read connection held for the lifetime of the lease.
class SqliteStore::ReadLease {
 public:
  ReadLease(Connection* conn, std::unique_lock<std::mutex> lock)
      : conn_(conn), lock_(std::move(lock)) {}
  Connection& operator*() const { return *conn_; }
  Connection* operator->() const { return conn_; }

 private:
  Connection* conn_;
  std::unique_lock<std::mutex> lock_;
};

SqliteStore::ReadLease SqliteStore::AcquireReader() const {
  const size_t n = readers_.size();
  const size_t start = next_reader_.fetch_add(1, std::memory_order_relaxed) % n;
  for (size_t i = 0; i < n; ++i) {
    Connection* c = readers_[(start + i) % n].get();
    std::unique_lock<std::mutex> lock(c->mu(), std::try_to_lock);
    if (lock.owns_lock()) return ReadLease(c, std::move(lock));
  }
  Connection* c = readers_[start].get();
  return ReadLease(c, std::unique_lock<std::mutex>(c->mu()));
}

namespace {

// Appends `entry` (defaults filled) on `c`, which must be inside a transaction or autocommit.
Status InsertAudit(Connection& c, const Clock& clock, AuditEntry* e) {
  if (e->id.empty()) e->id = NewUlid(clock);
  if (e->time == 0) e->time = clock.NowMillis();
  if (e->tenant_id.empty()) return InvalidArgumentError("audit entry without tenant", "tenant_id");
  if (e->action.empty()) return InvalidArgumentError("audit entry without action", "action");
  ASSIGN_OR_RETURN(Stmt s, c.Prepare(
                               "INSERT INTO audit_log (id, tenant_id, time, actor_type, actor_id, "
                               "action, target_type, target_id, target_name, details) VALUES "
                               "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  s.Bind(1, e->id).Bind(2, e->tenant_id).Bind(3, e->time).Bind(4, e->actor_type);
  s.Bind(5, e->actor_id).Bind(6, e->action).Bind(7, e->target_type).Bind(8, e->target_id);
  s.Bind(9, e->target_name).Bind(10, DumpJson(e->details));
  RETURN_IF_ERROR(s.Run("appending an audit entry"));
  e->seq = c.LastInsertRowid();
  return Status::Ok();
}

// Copies the caller's optional audit entry, filling what the change knows.
Status MaybeAudit(Connection& c, const Clock& clock, const AuditEntry* audit,
                  const std::string& tenant_id, const std::string& target_id,
                  const std::string& target_name) {
  if (audit == nullptr) return Status::Ok();
  AuditEntry e = FillAudit(*audit, tenant_id, target_id, target_name);
  return InsertAudit(c, clock, &e);
}

}  // namespace

// ---------------------------------------------------------------- open and migrations

int SqliteStore::SchemaVersion() { return static_cast<int>(Migrations().size()); }

SqliteStore::SqliteStore(std::string path, const Clock& clock, Options options)
    : path_(std::move(path)), clock_(clock), options_(options) {}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard<std::mutex> lock(ingester_mu_);
    ingester_stop_ = true;
  }
  ingester_cv_.notify_all();
  if (ingester_.joinable()) ingester_.join();
  // Everything is stored and the segments deleted; on failure the journal keeps the rest for
  // the next Open.
  if (options_.decision_log && !segments_.empty()) (void)FlushDecisions();
}

namespace {

constexpr char kPageSizePragma[] = "PRAGMA page_size = 4096";

Status Configure(Connection& c, int cache_kib, const char* synchronous) {
  // PRAGMA values cannot be bound; these are integers and keywords of the code, not input.
  std::string pragmas = "PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0; "
                        "PRAGMA journal_size_limit = 67108864; PRAGMA cache_size = -" +
                        std::to_string(std::max(256, cache_kib)) + "; PRAGMA synchronous = " +
                        synchronous + ";";
  return c.Exec(pragmas.c_str(), "configuring the connection");
}

Status Migrate(Connection& c, const Clock& clock) {
  RETURN_IF_ERROR(c.Exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                         "creating the migrations table"));
  const auto& migrations = Migrations();
  const int64_t known = static_cast<int64_t>(migrations.size());
  while (true) {
    Transaction tx(&c);
    RETURN_IF_ERROR(tx.status());
    int64_t current = 0;
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
      ASSIGN_OR_RETURN(bool row, s.Step("reading the schema version"));
      if (row) current = s.Int(0);
    }
    if (current > known) {
      return FailedPreconditionError(
          "database schema version " + std::to_string(current) +
          " is newer than this warden supports (schema version " + std::to_string(known) +
          "); upgrade warden or use another data directory");
    }
    if (current == known) return Status::Ok();
    RETURN_IF_ERROR(c.Exec(migrations[current],
                           "applying schema migration " + std::to_string(current + 1)));
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO schema_migrations (version, applied_at) "
                                         "VALUES (?, ?)"));
      s.Bind(1, current + 1).Bind(2, clock.NowMillis());
      RETURN_IF_ERROR(s.Run("recording a schema migration"));
    }
    RETURN_IF_ERROR(tx.Commit());
  }
}

}  // namespace

StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                         const Clock& clock, Options options) {
  if (sqlite3_threadsafe() == 0) return InternalError("SQLite was built without thread support");
  std::unique_ptr<SqliteStore> store(new SqliteStore(path, clock, options));
  // The database holds password and token hashes: owner-only, whatever the umask. SQLite
  // creates the -wal and -shm files with the database file's mode.
  if (!path.empty() && path != ":memory:" && path.rfind("file:", 0) != 0) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return UnavailableError("cannot open " + path + ": " + std::strerror(errno));
    const bool restricted = ::fchmod(fd, 0600) == 0;
    ::close(fd);
    if (!restricted) return UnavailableError("cannot make " + path + " owner-only: " + std::strerror(errno));
    for (const char* suffix : {"-wal", "-shm"}) (void)::chmod((path + suffix).c_str(), 0600);
  }
  ASSIGN_OR_RETURN(store->admin_, Connection::Open(path, options.busy_timeout_ms));
  // Takes effect only when the file is new (before its first table). Each move rewrites the
  // last page of decision_chunk and of its indexes in the WAL, so small pages mean fewer
  // bytes a commit: a pass of 100 rows took ~102 µs against 115-175 µs with 16 KiB pages
  // (bench/store_bench). 16 KiB had been cheaper with one row per decision (schema version
  // 3); databases created then keep their page size.
  RETURN_IF_ERROR(store->admin_->Exec(kPageSizePragma, "setting the page size"));
  {
    // journal_mode=WAL is persistent in the file; set it before anything else.
    ASSIGN_OR_RETURN(Stmt s, store->admin_->Prepare("PRAGMA journal_mode = WAL"));
    ASSIGN_OR_RETURN(bool row, s.Step("enabling WAL"));
    if (!row || s.Text(0) != "wal") {
      return UnavailableError("cannot put the database " + path + " in WAL mode");
    }
  }
  RETURN_IF_ERROR(Configure(*store->admin_, options.cache_kib, "FULL"));
  RETURN_IF_ERROR(Migrate(*store->admin_, clock));

  ASSIGN_OR_RETURN(store->log_, Connection::Open(path, options.busy_timeout_ms));
  RETURN_IF_ERROR(Configure(*store->log_, options.log_cache_kib, "NORMAL"));

  ASSIGN_OR_RETURN(store->checkpointer_, Connection::Open(path, options.busy_timeout_ms));
  RETURN_IF_ERROR(Configure(*store->checkpointer_, 256, "FULL"));
  // A TRUNCATE checkpoint holds off this process's writers: wait briefly for readers only.
  sqlite3_busy_timeout(store->checkpointer_->raw(), 100);

  const int readers = std::max(1, options.read_connections);
  for (int i = 0; i < readers; ++i) {
    ASSIGN_OR_RETURN(auto c, Connection::Open(path, options.busy_timeout_ms));
    RETURN_IF_ERROR(Configure(*c, options.cache_kib, "NORMAL"));
    RETURN_IF_ERROR(c->Exec("PRAGMA query_only = ON", "configuring a reader"));
    store->readers_.push_back(std::move(c));
  }
  if (options.decision_log) RETURN_IF_ERROR(store->OpenJournal());
  return store;
}

Status SqliteStore::OpenJournal() {
  // What is stored: rows per principal (retention's hint) and each principal's newest stored
  // seq (the replay below skips its rows up to it).
  std::unordered_map<std::string, int64_t> newest;
  {
    std::lock_guard<std::mutex> write(write_mu_);
    ASSIGN_OR_RETURN(Stmt s, log_->Prepare("SELECT tenant_id, principal_id, SUM(row_count), MAX(last_seq) "
                                           "FROM decision_chunk GROUP BY tenant_id, principal_id"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step("counting decisions per principal"));
      if (!row) break;
      std::string key = PrincipalKey(s.Text(0), s.Text(1));
      principal_rows_[key] = s.Int(2);
      newest[std::move(key)] = s.Int(3);
    }
  }
  RETURN_IF_ERROR(ConvertDecisionLog());
  {
    auto r = AcquireReader();
    ASSIGN_OR_RETURN(Stmt s, r->Prepare("SELECT last_seq FROM decision_journal WHERE id = 1"));
    ASSIGN_OR_RETURN(bool row, s.Step("reading the decision log's watermark"));
    if (row) durable_seq_ = s.Int(0);
  }
  // The segments a previous run left (and the single journal file of wardens before them,
  // whose rows were moved in seq order: all of them up to the watermark), oldest first.
  std::vector<std::pair<uint64_t, std::string>> files;
  const std::filesystem::path db(path_);
  const std::string prefix = db.filename().string() + "-decisions";
  std::error_code ec;
  const std::filesystem::path dir = db.has_parent_path() ? db.parent_path() : std::filesystem::path(".");
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == prefix) {
      files.emplace_back(0, entry.path().string());
    } else if (name.size() > prefix.size() + 1 && name.compare(0, prefix.size() + 1, prefix + ".") == 0) {
      uint64_t number = 0;
      const char* begin = name.data() + prefix.size() + 1;
      auto [end, err] = std::from_chars(begin, name.data() + name.size(), number);
      if (err == std::errc() && end == name.data() + name.size() && number > 0) {
        files.emplace_back(number, entry.path().string());
      }
    }
  }
  if (ec) return UnavailableError("cannot list the decision journal's segments beside " + path_ + ": " + ec.message());
  std::sort(files.begin(), files.end());
  {
    std::lock_guard<std::mutex> lock(append_mu_);
    for (const auto& [number, file_path] : files) {
      ASSIGN_OR_RETURN(auto file, DecisionJournal::Open(file_path));
      appended_bytes_ += file->end() - DecisionJournal::kHeaderBytes;
      segments_.push_back(Segment{number, file_path, std::move(file), 0});
    }
    next_segment_ = files.empty() ? 1 : files.back().first + 1;
  }
  // Replay: store every journaled row that is not stored yet, then start a new segment.
  int64_t newest_seen = durable_seq_.load();
  replay_skip_ = [&](const DecisionRow& d) {
    newest_seen = std::max(newest_seen, d.seq);
    if (d.seq <= durable_seq_.load()) return true;
    auto it = newest.find(PrincipalKey(d.tenant_id, d.principal_id));
    return it != newest.end() && d.seq <= it->second;
  };
  {
    std::lock_guard<std::mutex> lock(ingest_mu_);
    read_segment_ = files.empty() ? 0 : files.front().first;
    read_offset_ = DecisionJournal::kHeaderBytes;
    Status st = MovePassLocked(/*read_all=*/true, /*seal_all=*/true);
    replay_skip_ = nullptr;
    RETURN_IF_ERROR(st);
    read_seq_ = std::max(read_seq_, newest_seen);
    if (newest_seen > durable_seq_.load()) {  // rows all skipped: the watermark still moves on
      std::lock_guard<std::mutex> write(write_mu_);
      ASSIGN_OR_RETURN(Stmt pos, log_->Prepare("UPDATE decision_journal SET last_seq = ? WHERE id = 1"));
      pos.Bind(1, newest_seen);
      RETURN_IF_ERROR(pos.Run("saving the decision log's watermark"));
      durable_seq_ = newest_seen;
    }
    ASSIGN_OR_RETURN(Segment fresh, NewSegment(next_segment_));
    std::vector<Segment> gone;
    {
      std::lock_guard<std::mutex> append(append_mu_);
      ++next_segment_;
      read_segment_ = fresh.number;
      read_offset_ = DecisionJournal::kHeaderBytes;
      read_bytes_ = appended_bytes_.load();
      while (!segments_.empty()) {
        deleted_bytes_ += segments_.front().file->end() - DecisionJournal::kHeaderBytes;
        gone.push_back(std::move(segments_.front()));
        segments_.pop_front();
      }
      segments_.push_back(std::move(fresh));
      next_seq_ = durable_seq_.load() + 1;
    }
    for (Segment& g : gone) {
      g.file.reset();
      (void)::unlink(g.path.c_str());
    }
  }
  if (options_.decision_mover) ingester_ = std::thread([this] { IngestLoop(); });
  return Status::Ok();
}

StatusOr<SqliteStore::Segment> SqliteStore::NewSegment(uint64_t number) const {
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "-decisions.%010llu", static_cast<unsigned long long>(number));
  Segment s{number, path_ + suffix, nullptr, 0};
  (void)::unlink(s.path.c_str());  // a stale file of that number holds nothing unstored
  ASSIGN_OR_RETURN(s.file, DecisionJournal::Open(s.path));
  return s;
}

void SqliteStore::IngestLoop() {
  pthread_setname_np(pthread_self(), "warden-mover");
  // Normal priority, unlike the maintenance thread: on a CPU-starved machine a niced mover
  // fell behind the check path (seconds, measured while a build ran), and now the check path
  // answers 503 once the mover is behind. Niced or at SCHED_IDLE it changed neither
  // throughput nor tail latency on an idle machine (docs/benchmarks.md).
  // A pass that found rows is followed by another after kBusyInterval, an empty one after
  // kIdleInterval. With one chunk written per principal per pass, one pass every 5 ms gave
  // the lowest p99 (docs/benchmarks.md, session 4); with open chunks a pass mostly reads the
  // journal, and writes what filled up.
  constexpr auto kBusyInterval = std::chrono::milliseconds(5);
  constexpr auto kIdleInterval = std::chrono::milliseconds(50);
  std::unique_lock<std::mutex> lock(ingester_mu_);
  bool busy = false;
  while (!ingester_cv_.wait_for(lock, busy ? kBusyInterval : kIdleInterval, [this] { return ingester_stop_; })) {
    lock.unlock();
    const int64_t before = read_bytes_.load();
    (void)MoveDecisions();  // on failure the rows stay journaled; the next pass retries
    busy = read_bytes_.load() != before;
    lock.lock();
  }
}

namespace {
constexpr size_t kRowsPerTransaction = 5000;  // moving decision rows: a few ms of work
// Journal rows decoded at a time: ingest_rows_ keeps their string buffers between passes
// (~800 bytes a row), so 5,000 at a time held ~4 MiB for good, and 1,000 ~0.8 MiB.
constexpr size_t kRowsPerRead = 256;
}  // namespace

Status SqliteStore::MoveDecisions() {
  if (!options_.decision_log) return FailedPreconditionError("the store was opened without its decision log");
  std::lock_guard<std::mutex> lock(ingest_mu_);
  return MovePassLocked(false, false);
}

Status SqliteStore::FlushDecisions() {
  if (!options_.decision_log) return FailedPreconditionError("the store was opened without its decision log");
  std::lock_guard<std::mutex> lock(ingest_mu_);
  return MovePassLocked(true, true);
}

Status SqliteStore::MovePassLocked(bool read_all, bool seal_all) {
  size_t read = 0;
  while (read_all || read < kRowsPerTransaction) {
    DecisionJournal* file = nullptr;
    bool last = false;
    uint64_t next_number = 0;
    {
      std::lock_guard<std::mutex> lock(append_mu_);
      for (size_t i = 0; i < segments_.size(); ++i) {
        if (segments_[i].number != read_segment_) continue;
        file = segments_[i].file.get();
        last = i + 1 == segments_.size();
        if (!last) next_number = segments_[i + 1].number;
        break;
      }
    }
    if (file == nullptr) break;
    if (read_offset_ >= file->end()) {
      if (last) break;
      file->ReleaseReadBuffers();
      read_segment_ = next_number;  // appends went on in the next segment
      read_offset_ = DecisionJournal::kHeaderBytes;
      continue;
    }
    ASSIGN_OR_RETURN(int64_t next, file->Read(read_offset_, kRowsPerRead, &ingest_rows_));
    const int64_t now = clock_.NowMillis();
    for (const DecisionRow& d : ingest_rows_) {
      if (replay_skip_ && replay_skip_(d)) continue;
      open_.Add(d, now);
      read_seq_ = std::max(read_seq_, d.seq);
    }
    read_bytes_ += next - read_offset_;
    read_offset_ = next;
    read += ingest_rows_.size();
    // Bound the memory of a long read (a replay, a mover far behind) as a pass does.
    if (open_.MemoryBytes() > static_cast<size_t>(options_.decision_open_bytes) * 2) {
      open_.SealToFit(static_cast<size_t>(options_.decision_open_bytes));
      RETURN_IF_ERROR(WriteSealedLocked());
    }
  }
  if (seal_all) {
    open_.SealAll();
  } else {
    open_.SealOpenedBefore(clock_.NowMillis() - options_.decision_open_age_ms);
    if (appended_bytes_.load() - deleted_bytes_.load() > options_.decision_journal_soft_bytes) {
      int64_t oldest_segment_seq = 0;
      {
        std::lock_guard<std::mutex> lock(append_mu_);
        if (segments_.size() > 1) oldest_segment_seq = segments_.front().last_seq;
      }
      open_.SealThrough(oldest_segment_seq);
    }
    open_.SealToFit(static_cast<size_t>(options_.decision_open_bytes));
  }
  RETURN_IF_ERROR(WriteSealedLocked());
  held_bytes_ = static_cast<int64_t>(open_.MemoryBytes());
  DeleteStoredSegmentsLocked();
  return Status::Ok();
}

namespace {

// Inserts the chunk `b` holds as a decision_chunk row. `insert` caches the
// statement across calls on one connection; `blob` is scratch. The principal's row count in
// `principal_rows` (SqliteStore::principal_rows_) gains the chunk's rows.
Status InsertChunk(Connection& c, std::optional<Stmt>* insert, std::string_view tenant_id,
                   std::string_view principal_id, const ChunkBuilder& b, std::string* blob,
                   std::unordered_map<std::string, int64_t>* principal_rows) {
  if (!*insert) {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO decision_chunk (first_seq, last_seq, tenant_id, "
                                       "principal_id, min_time, max_time, row_count, rows) "
                                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
    insert->emplace(std::move(s));
  }
  Stmt& s = **insert;
  s.Reset();
  s.Bind(1, b.first_seq()).Bind(2, b.last_seq()).Bind(3, tenant_id);
  s.Bind(4, principal_id).Bind(5, b.min_time()).Bind(6, b.max_time());
  s.Bind(7, static_cast<int64_t>(b.rows()));
  (*principal_rows)[PrincipalKey(tenant_id, principal_id)] += static_cast<int64_t>(b.rows());
  b.Peek(blob);
  s.BindBlob(8, *blob);
  return s.Run("storing decision rows");
}

}  // namespace

Status SqliteStore::WriteSealedLocked() {
  const auto& sealed = open_.sealed();
  if (sealed.empty()) return Status::Ok();
  // Every row before the oldest chunk still open, and every row read when none is, is stored
  // once this commits.
  const int64_t open_seq = open_.OldestOpenSeq();
  const int64_t watermark = std::max(durable_seq_.load(), open_seq == INT64_MAX ? read_seq_ : std::min(read_seq_, open_seq - 1));
  std::lock_guard<std::mutex> write(write_mu_);
  Connection& c = *log_;
  Transaction tx(&c);
  RETURN_IF_ERROR(tx.status());
  std::optional<Stmt> insert;
  std::string blob;
  // On failure the chunks stay sealed (and readable) for the next pass.
  for (const auto& chunk : sealed) {
    RETURN_IF_ERROR(InsertChunk(c, &insert, chunk->tenant_id(), chunk->principal_id(), chunk->builder, &blob,
                                &principal_rows_));
  }
  ASSIGN_OR_RETURN(Stmt pos, c.Prepare("UPDATE decision_journal SET last_seq = ? WHERE id = 1"));
  pos.Bind(1, watermark);
  RETURN_IF_ERROR(pos.Run("saving the decision log's watermark"));
  RETURN_IF_ERROR(tx.Commit());
  open_.DropSealed(sealed.size());
  durable_seq_ = watermark;
  return Status::Ok();
}

void SqliteStore::DeleteStoredSegmentsLocked() {
  std::vector<Segment> gone;
  {
    std::lock_guard<std::mutex> lock(append_mu_);
    // Never the last segment (appends go there), nor one the mover has not read to its end.
    while (segments_.size() > 1 && segments_.front().number != read_segment_ &&
           segments_.front().last_seq <= durable_seq_.load()) {
      deleted_bytes_ += segments_.front().file->end() - DecisionJournal::kHeaderBytes;
      gone.push_back(std::move(segments_.front()));
      segments_.pop_front();
    }
  }
  for (Segment& g : gone) {
    g.file.reset();
    (void)::unlink(g.path.c_str());
  }
}

int64_t SqliteStore::DecisionBacklogBytes() const {
  if (!options_.decision_log) return 0;
  return std::max<int64_t>(0, appended_bytes_.load() - read_bytes_.load()) + held_bytes_.load();
}

namespace {

// Groups decision rows, given in ascending seq, into one chunk per principal
// (store/decision_chunk.h) and inserts each chunk once it is full or at Finish(): the
// conversion of decision_log and the chunks Prune rewrites.
class ChunkWriter {
 public:
  // `principal_rows` (the store's per-principal row counts) gains each inserted chunk's rows.
  ChunkWriter(Connection& c, std::unordered_map<std::string, int64_t>* principal_rows)
      : c_(c), principal_rows_(principal_rows) {}

  Status Add(const DecisionRow& row) {
    Open* open = Find(row);
    if (!open->builder.Add(row)) {
      RETURN_IF_ERROR(Insert(*open));
      open->builder.Add(row);  // an empty builder takes any row
    }
    return Status::Ok();
  }

  Status Finish() {
    for (Open& open : open_) {
      if (!open.builder.empty()) RETURN_IF_ERROR(Insert(open));
    }
    return Status::Ok();
  }

 private:
  struct Open {
    std::string tenant_id;
    std::string principal_id;
    ChunkBuilder builder;
  };

  Open* Find(const DecisionRow& row) {
    if (last_ != nullptr && last_->tenant_id == row.tenant_id && last_->principal_id == row.principal_id) {
      return last_;
    }
    key_ = PrincipalKey(row.tenant_id, row.principal_id);
    auto [it, inserted] = by_key_.try_emplace(key_, open_.size());
    if (inserted) open_.push_back(Open{row.tenant_id, row.principal_id, ChunkBuilder()});
    last_ = &open_[it->second];
    return last_;
  }

  Status Insert(Open& open) {
    RETURN_IF_ERROR(InsertChunk(c_, &insert_, open.tenant_id, open.principal_id, open.builder, &blob_, principal_rows_));
    open.builder.Clear();
    return Status::Ok();
  }

  Connection& c_;
  std::unordered_map<std::string, int64_t>* principal_rows_;
  std::deque<Open> open_;  // stable addresses for last_
  std::unordered_map<std::string, size_t> by_key_;
  Open* last_ = nullptr;
  std::string key_;
  std::string blob_;
  std::optional<Stmt> insert_;
};

}  // namespace

Status SqliteStore::ConvertDecisionLog() {
  std::lock_guard<std::mutex> lock(write_mu_);
  Connection& c = *log_;
  {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                                       "AND name = 'decision_log'"));
    ASSIGN_OR_RETURN(bool row, s.Step("looking for the decision_log table"));
    if (!row || s.Int(0) == 0) return Status::Ok();
  }
  std::vector<DecisionRow> rows;
  while (true) {
    Transaction tx(&c);
    RETURN_IF_ERROR(tx.status());
    rows.clear();
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT seq, id, time, tenant_id, principal_type, principal_id, "
                                         "principal_name, token_id, model, action, resource_id, "
                                         "allowed, reason, rule, eval_error, policy_revision, "
                                         "client_addr, method, path, request_id, latency_us "
                                         "FROM decision_log ORDER BY seq LIMIT ?"));
      s.Bind(1, static_cast<int64_t>(kRowsPerTransaction));
      while (true) {
        ASSIGN_OR_RETURN(bool row, s.Step("reading decision_log"));
        if (!row) break;
        DecisionRow& d = rows.emplace_back();
        d.seq = s.Int(0);
        d.id = s.Text(1);
        d.time = s.Int(2);
        d.tenant_id = s.Text(3);
        d.principal_type = s.Text(4);
        d.principal_id = s.Text(5);
        d.principal_name = s.Text(6);
        d.token_id = s.Text(7);
        d.model = s.Text(8);
        d.action = s.Text(9);
        d.resource_id = s.Text(10);
        d.allowed = s.Bool(11);
        d.reason = s.Text(12);
        d.rule = s.Text(13);
        d.eval_error = s.Text(14);
        d.policy_revision = s.Text(15);
        d.client_addr = s.Text(16);
        d.method = s.Text(17);
        d.path = s.Text(18);
        d.request_id = s.Text(19);
        d.latency_us = s.Int(20);
      }
    }
    if (rows.empty()) {
      RETURN_IF_ERROR(c.Exec("DROP TABLE decision_log", "dropping decision_log"));
      return tx.Commit();
    }
    {
      ChunkWriter writer(c, &principal_rows_);
      for (const DecisionRow& d : rows) RETURN_IF_ERROR(writer.Add(d));
      RETURN_IF_ERROR(writer.Finish());
    }
    ASSIGN_OR_RETURN(Stmt del, c.Prepare("DELETE FROM decision_log WHERE seq <= ?"));
    del.Bind(1, rows.back().seq);
    RETURN_IF_ERROR(del.Run("converting decision_log"));
    RETURN_IF_ERROR(tx.Commit());
  }
}

int64_t SqliteStore::WalSizeBytes() const {
  std::error_code ec;
  auto size = std::filesystem::file_size(path_ + "-wal", ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

Status SqliteStore::Checkpoint() {
  std::lock_guard<std::mutex> lock(checkpointer_->mu());
  sqlite3* db = checkpointer_->raw();
  int log_frames = 0, backfilled = 0;
  int rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames, &backfilled);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    return SqliteError(rc, "checkpointing the WAL", sqlite3_errmsg(db));
  }
  if (rc == SQLITE_OK && backfilled < log_frames) {
    // Writers appended while that ran (they are never blocked by it). Under constant load
    // the WAL would then never be fully copied, so never start over from its beginning, and
    // would grow until the TRUNCATE below, which holds off writers for a long copy. Copying
    // the short tail with writers held off leaves the WAL fully checkpointed, and the next
    // commit restarts it from the beginning of the file.
    std::lock_guard<std::mutex> write_lock(write_mu_);
    rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      return SqliteError(rc, "checkpointing the WAL", sqlite3_errmsg(db));
    }
  }
  if (WalSizeBytes() > options_.wal_truncate_bytes) {
    std::lock_guard<std::mutex> write_lock(write_mu_);
    rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    // BUSY: a reader still uses the WAL; the next call tries again.
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      return SqliteError(rc, "truncating the WAL", sqlite3_errmsg(db));
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- tenants

namespace {

StatusOr<Tenant> InsertTenant(Connection& c, const Clock& clock, const std::string& id, const std::string& name) {
  if (id.empty()) return InvalidArgumentError("a tenant needs an id", "id");
  Tenant t{id, name.empty() ? id : name, NewUuid(), clock.NowMillis()};
  ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO tenants (id, name, tenant_token, created_at) "
                                     "VALUES (?, ?, ?, ?)"));
  s.Bind(1, t.id).Bind(2, t.name).Bind(3, t.tenant_token).Bind(4, t.created_at);
  RETURN_IF_ERROR(s.Run("creating tenant " + id));
  return t;
}

}  // namespace

StatusOr<Tenant> SqliteStore::EnsureDefaultTenant() {
  return AdminWrite([&](Connection& c) -> StatusOr<Tenant> {
    auto existing = LoadTenant(c, "id", kDefaultTenantId);
    if (existing.ok()) return existing;
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    ASSIGN_OR_RETURN(Tenant t, InsertTenant(c, clock_, kDefaultTenantId, kDefaultTenantId));
    return t;
  });
}

StatusOr<Tenant> SqliteStore::CreateTenant(const std::string& id, const std::string& name) {
  return AdminWrite([&](Connection& c) -> StatusOr<Tenant> {
    auto existing = LoadTenant(c, "id", id);
    if (existing.ok()) return AlreadyExistsError("tenant " + id + " exists");
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    ASSIGN_OR_RETURN(Tenant t, InsertTenant(c, clock_, id, name));
    return t;
  });
}

StatusOr<std::vector<Tenant>> SqliteStore::ListTenants() {
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare("SELECT id, name, tenant_token, created_at FROM tenants ORDER BY created_at, id"));
  std::vector<Tenant> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step("listing tenants"));
    if (!row) break;
    out.push_back(Tenant{s.Text(0), s.Text(1), s.Text(2), s.Int(3)});
  }
  return out;
}

StatusOr<Tenant> SqliteStore::GetTenant(const std::string& tenant_id) {
  auto r = AcquireReader();
  return LoadTenant(*r, "id", tenant_id);
}

StatusOr<std::string> SqliteStore::RotateTenantToken(const std::string& tenant_id,
                                                     const AuditEntry* audit) {
  return AdminWrite([&](Connection& c) -> StatusOr<std::string> {
    std::string token = NewUuid();
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE tenants SET tenant_token = ? WHERE id = ?"));
    s.Bind(1, token).Bind(2, tenant_id);
    RETURN_IF_ERROR(s.Run("rotating the tenant token"));
    if (c.Changes() == 0) return NotFoundError("tenant not found");
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, tenant_id, ""));
    return token;
  });
}

StatusOr<Tenant> SqliteStore::FindTenantByToken(const std::string& tenant_token) {
  if (tenant_token.empty()) return NotFoundError("tenant not found");
  auto r = AcquireReader();
  return LoadTenant(*r, "tenant_token", tenant_token);
}

// ---------------------------------------------------------------- users

namespace {


Status UserWriteError(Status st) {
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("a user with this email already exists", "email");
  }
  if (st.code() == StatusCode::kNotFound) return NotFoundError("tenant not found");
  return st;
}

}  // namespace

StatusOr<User> SqliteStore::CreateUser(const User& user, const AuditEntry* audit) {
  RETURN_IF_ERROR(ValidateUser(user));
  User u = user;
  if (u.id.empty()) u.id = NewUlid(clock_);
  u.created_at = u.updated_at = clock_.NowMillis();
  std::lock_guard<std::mutex> lock(write_mu_);
  Connection& c = *admin_;
  Transaction tx(&c);
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO users (id, tenant_id, email, name, roles, "
                                     "attributes, enabled, password_hash, created_at, "
                                     "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  s.Bind(1, u.id).Bind(2, u.tenant_id).Bind(3, u.email).Bind(4, u.name);
  s.Bind(5, RolesJson(u.roles)).Bind(6, DumpJson(u.attributes)).Bind(7, u.enabled);
  s.Bind(8, u.password_hash).Bind(9, u.created_at).Bind(10, u.updated_at);
  RETURN_IF_ERROR(UserWriteError(s.Run("creating a user")));
  RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, u.tenant_id, u.id, u.email));
  RETURN_IF_ERROR(tx.Commit());
  return u;
}

StatusOr<User> SqliteStore::GetUser(const std::string& tenant_id, const std::string& user_id) {
  auto r = AcquireReader();
  return LoadUser(*r, tenant_id, user_id);
}

StatusOr<User> SqliteStore::FindUserByEmail(const std::string& tenant_id,
                                            const std::string& email) {
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare(Sql({"SELECT ", kUserCols,
                                           " FROM users WHERE tenant_id = ? AND email = ? "
                                           "COLLATE NOCASE"})));
  s.Bind(1, tenant_id).Bind(2, email);
  ASSIGN_OR_RETURN(bool row, s.Step("finding a user"));
  if (!row) return NotFoundError("user not found");
  int64_t seq;
  return ReadUser(s, &seq);
}

StatusOr<Page<User>> SqliteStore::ListUsers(const std::string& tenant_id,
                                            const ListOptions& options) {
  ASSIGN_OR_RETURN(int64_t before, DecodeCursor(options.cursor));
  const int limit = ClampLimit(options.limit);
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare(Sql({"SELECT ", kUserCols,
                                           " FROM users WHERE tenant_id = ? AND seq < ? "
                                           "ORDER BY seq DESC LIMIT ?"})));
  s.Bind(1, tenant_id).Bind(2, before).Bind(3, limit + 1);
  return ReadPage<User>(s, "listing users", limit,
                       [](const Stmt& st, int64_t* seq) { return ReadUser(st, seq); });
}

StatusOr<User> SqliteStore::UpdateUser(const std::string& tenant_id, const std::string& user_id,
                                       const UserUpdate& update, const AuditEntry* audit) {
  return AdminWrite([&](Connection& c) -> StatusOr<User> {
    ASSIGN_OR_RETURN(User u, LoadUser(c, tenant_id, user_id));
    ApplyUpdate(update, &u);
    u.updated_at = clock_.NowMillis();
    RETURN_IF_ERROR(ValidateUser(u));
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE users SET email = ?, name = ?, roles = ?, "
                                       "attributes = ?, enabled = ?, password_hash = ?, "
                                       "updated_at = ? WHERE tenant_id = ? AND id = ?"));
    s.Bind(1, u.email).Bind(2, u.name).Bind(3, RolesJson(u.roles)).Bind(4, DumpJson(u.attributes));
    s.Bind(5, u.enabled).Bind(6, u.password_hash).Bind(7, u.updated_at).Bind(8, tenant_id);
    s.Bind(9, user_id);
    RETURN_IF_ERROR(UserWriteError(s.Run("updating a user")));
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, u.id, u.email));
    return u;
  });
}

Status SqliteStore::DeleteUser(const std::string& tenant_id, const std::string& user_id,
                               const AuditEntry* audit) {
  return AdminWrite([&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(User u, LoadUser(c, tenant_id, user_id));
    // Sessions go with the user (ON DELETE CASCADE).
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM users WHERE tenant_id = ? AND id = ?"));
    s.Bind(1, tenant_id).Bind(2, user_id);
    RETURN_IF_ERROR(s.Run("deleting a user"));
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, u.id, u.email));
    return Status::Ok();
  });
}

StatusOr<int64_t> SqliteStore::CountUsers(const std::string& tenant_id) {
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare("SELECT COUNT(*) FROM users WHERE tenant_id = ?"));
  s.Bind(1, tenant_id);
  ASSIGN_OR_RETURN(bool row, s.Step("counting users"));
  return row ? s.Int(0) : 0;
}

StatusOr<Session> SqliteStore::CreateSession(const Session& session) {
  if (session.token_hash.empty()) return InvalidArgumentError("session without token hash");
  Session x = session;
  if (x.id.empty()) x.id = NewUlid(clock_);
  if (x.created_at == 0) x.created_at = clock_.NowMillis();
  std::lock_guard<std::mutex> lock(write_mu_);
  Connection& c = *admin_;
  ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO sessions (id, tenant_id, user_id, token_hash, "
                                     "csrf_token, created_at, expires_at) SELECT ?, ?, ?, ?, ?, "
                                     "?, ? WHERE EXISTS (SELECT 1 FROM users WHERE tenant_id = "
                                     "? AND id = ?)"));
  s.Bind(1, x.id).Bind(2, x.tenant_id).Bind(3, x.user_id).Bind(4, x.token_hash);
  s.Bind(5, x.csrf_token).Bind(6, x.created_at).Bind(7, x.expires_at).Bind(8, x.tenant_id);
  s.Bind(9, x.user_id);
  Status st = s.Run("creating a session");
  if (st.code() == StatusCode::kAlreadyExists) return AlreadyExistsError("session exists");
  RETURN_IF_ERROR(st);
  if (c.Changes() == 0) return NotFoundError("user not found");
  return x;
}

StatusOr<Session> SqliteStore::FindSessionByHash(const std::string& token_hash) {
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare(Sql({"SELECT ", kSessionCols,
                                           " FROM sessions WHERE token_hash = ? AND "
                                           "(expires_at = 0 OR expires_at > ?)"})));
  s.Bind(1, token_hash).Bind(2, clock_.NowMillis());
  ASSIGN_OR_RETURN(bool row, s.Step("finding a session"));
  if (!row) return NotFoundError("session not found");
  return ReadSession(s);
}

Status SqliteStore::DeleteSession(const std::string& session_id) {
  std::lock_guard<std::mutex> lock(write_mu_);
  ASSIGN_OR_RETURN(Stmt s, admin_->Prepare("DELETE FROM sessions WHERE id = ?"));
  s.Bind(1, session_id);
  RETURN_IF_ERROR(s.Run("deleting a session"));
  if (admin_->Changes() == 0) return NotFoundError("session not found");
  return Status::Ok();
}

StatusOr<int64_t> SqliteStore::DeleteExpiredSessions() {
  std::lock_guard<std::mutex> lock(write_mu_);
  ASSIGN_OR_RETURN(Stmt s, admin_->Prepare("DELETE FROM sessions WHERE expires_at != 0 AND "
                                           "expires_at <= ?"));
  s.Bind(1, clock_.NowMillis());
  RETURN_IF_ERROR(s.Run("deleting expired sessions"));
  return admin_->Changes();
}

StatusOr<int64_t> SqliteStore::DeleteSessionsOfUser(const std::string& tenant_id,
                                                    const std::string& user_id) {
  std::lock_guard<std::mutex> lock(write_mu_);
  ASSIGN_OR_RETURN(Stmt s, admin_->Prepare("DELETE FROM sessions WHERE tenant_id = ? AND "
                                           "user_id = ?"));
  s.Bind(1, tenant_id).Bind(2, user_id);
  RETURN_IF_ERROR(s.Run("deleting sessions of a user"));
  return admin_->Changes();
}

// ---------------------------------------------------------------- service accounts

namespace {

Status AccountNameError(Status st) {
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("a service account with this name already exists", "name");
  }
  return st;
}

}  // namespace

namespace {

// The rows of a new account (and its policy version 1), inside the caller's transaction.
StatusOr<ServiceAccount> InsertAccount(Connection& c, const Clock& clock, const ServiceAccount& account) {
  RETURN_IF_ERROR(ValidateAccount(account));
  ServiceAccount a = NewAccountRow(account, clock.NowMillis(), account.id.empty() ? NewUlid(clock) : "");
  {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare(
                                 "INSERT INTO service_accounts (id, tenant_id, name, description, "
                                 "enabled, policy_yaml, policy_version, attributes, created_at, "
                                 "created_by_type, created_by_id, updated_at, deleted_at) VALUES "
                                 "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"));
    s.Bind(1, a.id).Bind(2, a.tenant_id).Bind(3, a.name).Bind(4, a.description);
    s.Bind(5, a.enabled).Bind(6, a.policy_yaml).Bind(7, a.policy_version);
    s.Bind(8, DumpJson(a.attributes)).Bind(9, a.created_at).Bind(10, a.created_by_type);
    s.Bind(11, a.created_by_id).Bind(12, a.updated_at);
    Status st = s.Run("creating a service account");
    if (st.code() == StatusCode::kNotFound) return NotFoundError("tenant not found");
    RETURN_IF_ERROR(AccountNameError(st));
  }
  {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO service_account_policy_versions (tenant_id, "
                                       "account_id, version, policy_yaml, created_at, "
                                       "actor_type, actor_id) VALUES (?, ?, 1, ?, ?, ?, ?)"));
    s.Bind(1, a.tenant_id).Bind(2, a.id).Bind(3, a.policy_yaml).Bind(4, a.created_at);
    s.Bind(5, a.created_by_type).Bind(6, a.created_by_id);
    RETURN_IF_ERROR(s.Run("storing policy version 1"));
  }
  return a;
}

// The row of a new token of a live account, inside the caller's transaction.
StatusOr<ApiTokenRecord> InsertToken(Connection& c, const Clock& clock, const ApiTokenRecord& token) {
  RETURN_IF_ERROR(ValidateToken(token));
  ApiTokenRecord t = token;
  if (t.created_at == 0) t.created_at = clock.NowMillis();
  RETURN_IF_ERROR(LoadAccount(c, t.tenant_id, t.account_id, false).status());
  ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO api_tokens (id, tenant_id, account_id, name, "
                                     "secret_hash, display_prefix, created_at, created_by_type, "
                                     "created_by_id, last_used_at, expires_at) VALUES (?, ?, ?, "
                                     "?, ?, ?, ?, ?, ?, ?, ?)"));
  s.Bind(1, t.id).Bind(2, t.tenant_id).Bind(3, t.account_id).Bind(4, t.name);
  s.BindBlob(5, t.secret_hash).Bind(6, t.display_prefix).Bind(7, t.created_at);
  s.Bind(8, t.created_by_type).Bind(9, t.created_by_id).Bind(10, t.last_used_at);
  s.Bind(11, t.expires_at);
  Status st = s.Run("creating a token");
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("a token with this id already exists", "id");
  }
  RETURN_IF_ERROR(st);
  return t;
}

}  // namespace

StatusOr<ServiceAccount> SqliteStore::CreateAccount(const ServiceAccount& account,
                                                    const AuditEntry* audit) {
  return AdminWrite([&](Connection& c) -> StatusOr<ServiceAccount> {
    ASSIGN_OR_RETURN(ServiceAccount a, InsertAccount(c, clock_, account));
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, a.tenant_id, a.id, a.name));
    return a;
  });
}

Status SqliteStore::ImportAccounts(std::vector<ServiceAccount>* accounts, const std::vector<ApiTokenRecord>& tokens) {
  return AdminWrite([&](Connection& c) -> Status {
    for (ServiceAccount& a : *accounts) {
      ASSIGN_OR_RETURN(a, InsertAccount(c, clock_, a));
    }
    for (const ApiTokenRecord& t : tokens) RETURN_IF_ERROR(InsertToken(c, clock_, t).status());
    return Status::Ok();
  });
}

StatusOr<ServiceAccount> SqliteStore::GetAccount(const std::string& tenant_id,
                                                 const std::string& account_id,
                                                 bool include_deleted) {
  auto r = AcquireReader();
  return LoadAccount(*r, tenant_id, account_id, include_deleted);
}

StatusOr<ServiceAccount> SqliteStore::GetAccountByName(const std::string& tenant_id,
                                                       const std::string& name,
                                                       bool include_deleted) {
  auto r = AcquireReader();
  // Live first (deleted_at = 0), then the most recently deleted.
  ASSIGN_OR_RETURN(Stmt s, r->Prepare(Sql({"SELECT ", kAccountCols,
                                           " FROM service_accounts a WHERE a.tenant_id = ? AND "
                                           "a.name = ? COLLATE NOCASE AND (? OR a.deleted_at = 0) "
                                           "ORDER BY a.deleted_at != 0, a.deleted_at DESC, "
                                           "a.seq DESC LIMIT 1"})));
  s.Bind(1, tenant_id).Bind(2, name).Bind(3, include_deleted);
  ASSIGN_OR_RETURN(bool row, s.Step("finding a service account"));
  if (!row) return NotFoundError("service account not found");
  int64_t seq;
  return ReadAccount(s, 0, &seq);
}

StatusOr<Page<ServiceAccount>> SqliteStore::ListAccounts(const std::string& tenant_id,
                                                         const ListOptions& options) {
  ASSIGN_OR_RETURN(int64_t before, DecodeCursor(options.cursor));
  const int limit = ClampLimit(options.limit);
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare(Sql({"SELECT ", kAccountCols,
                                           " FROM service_accounts a WHERE a.tenant_id = ? AND "
                                           "a.deleted_at = 0 AND a.seq < ? ORDER BY a.seq DESC "
                                           "LIMIT ?"})));
  s.Bind(1, tenant_id).Bind(2, before).Bind(3, limit + 1);
  return ReadPage<ServiceAccount>(
      s, "listing service accounts", limit,
      [](const Stmt& st, int64_t* seq) { return ReadAccount(st, 0, seq); });
}

StatusOr<ServiceAccount> SqliteStore::UpdateAccount(const std::string& tenant_id,
                                                    const std::string& account_id,
                                                    const AccountUpdate& update,
                                                    const AuditEntry* audit) {
  return AdminWrite([&](Connection& c) -> StatusOr<ServiceAccount> {
    ASSIGN_OR_RETURN(ServiceAccount a, LoadAccount(c, tenant_id, account_id, false));
    ApplyUpdate(update, &a);
    RETURN_IF_ERROR(ValidateAccount(a));
    a.updated_at = clock_.NowMillis();
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE service_accounts SET name = ?, description = ?, "
                                       "enabled = ?, attributes = ?, updated_at = ? WHERE "
                                       "tenant_id = ? AND id = ?"));
    s.Bind(1, a.name).Bind(2, a.description).Bind(3, a.enabled).Bind(4, DumpJson(a.attributes));
    s.Bind(5, a.updated_at).Bind(6, tenant_id).Bind(7, account_id);
    RETURN_IF_ERROR(AccountNameError(s.Run("updating a service account")));
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, a.id, a.name));
    return a;
  });
}

Status SqliteStore::SoftDeleteAccount(const std::string& tenant_id, const std::string& account_id,
                                      const AuditEntry* audit) {
  return AdminWrite([&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(ServiceAccount a, LoadAccount(c, tenant_id, account_id, false));
    const int64_t now = clock_.NowMillis();
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE service_accounts SET deleted_at = ?, "
                                         "updated_at = ? WHERE tenant_id = ? AND id = ?"));
      s.Bind(1, std::max<int64_t>(now, 1)).Bind(2, now).Bind(3, tenant_id).Bind(4, account_id);
      RETURN_IF_ERROR(s.Run("deleting a service account"));
    }
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM api_tokens WHERE account_id = ?"));
      s.Bind(1, account_id);
      RETURN_IF_ERROR(s.Run("deleting the tokens of a service account"));
    }
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, a.id, a.name));
    return Status::Ok();
  });
}

StatusOr<PolicyVersion> SqliteStore::SetPolicy(const std::string& tenant_id,
                                               const std::string& account_id,
                                               const std::string& policy_yaml,
                                               const std::string& actor_type,
                                               const std::string& actor_id,
                                               std::optional<int64_t> expected_version,
                                               const AuditEntry* audit) {
  return AdminWrite([&](Connection& c) -> StatusOr<PolicyVersion> {
    ASSIGN_OR_RETURN(ServiceAccount a, LoadAccount(c, tenant_id, account_id, false));
    if (expected_version && *expected_version != a.policy_version) {
      return FailedPreconditionError("the policy is at version " +
                                     std::to_string(a.policy_version) + ", not " +
                                     std::to_string(*expected_version));
    }
    PolicyVersion v{tenant_id,  account_id, a.policy_version + 1, policy_yaml,
                    clock_.NowMillis(), actor_type, actor_id};
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO service_account_policy_versions (tenant_id, "
                                         "account_id, version, policy_yaml, created_at, "
                                         "actor_type, actor_id) VALUES (?, ?, ?, ?, ?, ?, ?)"));
      s.Bind(1, v.tenant_id).Bind(2, v.account_id).Bind(3, v.version).Bind(4, v.policy_yaml);
      s.Bind(5, v.created_at).Bind(6, v.actor_type).Bind(7, v.actor_id);
      RETURN_IF_ERROR(s.Run("storing a policy version"));
    }
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE service_accounts SET policy_yaml = ?, "
                                         "policy_version = ?, updated_at = ? WHERE tenant_id = ? "
                                         "AND id = ?"));
      s.Bind(1, v.policy_yaml).Bind(2, v.version).Bind(3, v.created_at).Bind(4, tenant_id);
      s.Bind(5, account_id);
      RETURN_IF_ERROR(s.Run("setting the current policy"));
    }
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, a.id, a.name));
    return v;
  });
}

StatusOr<std::vector<PolicyVersion>> SqliteStore::ListPolicyVersions(
    const std::string& tenant_id, const std::string& account_id) {
  auto r = AcquireReader();
  RETURN_IF_ERROR(LoadAccount(*r, tenant_id, account_id, true).status());
  ASSIGN_OR_RETURN(Stmt s, r->Prepare("SELECT tenant_id, account_id, version, policy_yaml, "
                                      "created_at, actor_type, actor_id FROM "
                                      "service_account_policy_versions WHERE tenant_id = ? AND "
                                      "account_id = ? ORDER BY version DESC"));
  s.Bind(1, tenant_id).Bind(2, account_id);
  std::vector<PolicyVersion> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step("listing policy versions"));
    if (!row) break;
    out.push_back(PolicyVersion{s.Text(0), s.Text(1), s.Int(2), s.Text(3), s.Int(4), s.Text(5),
                                s.Text(6)});
  }
  return out;
}

// ---------------------------------------------------------------- tokens

Status SqliteStore::CreateToken(const ApiTokenRecord& token, const AuditEntry* audit) {
  return AdminWrite([&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(ApiTokenRecord t, InsertToken(c, clock_, token));
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, t.tenant_id, t.id, t.name));
    return Status::Ok();
  });
}

StatusOr<std::vector<ApiTokenRecord>> SqliteStore::ListTokens(const std::string& tenant_id,
                                                              const std::string& account_id) {
  auto r = AcquireReader();
  RETURN_IF_ERROR(LoadAccount(*r, tenant_id, account_id, false).status());
  ASSIGN_OR_RETURN(Stmt s, r->Prepare(Sql({"SELECT ", kTokenCols,
                                           " FROM api_tokens t WHERE t.tenant_id = ? AND "
                                           "t.account_id = ? ORDER BY t.created_at, t.rowid"})));
  s.Bind(1, tenant_id).Bind(2, account_id);
  std::vector<ApiTokenRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step("listing tokens"));
    if (!row) break;
    out.push_back(ReadToken(s, 0));
  }
  return out;
}

Status SqliteStore::DeleteToken(const std::string& tenant_id, const std::string& account_id,
                                const std::string& token_id, const AuditEntry* audit) {
  return AdminWrite([&](Connection& c) -> Status {
    std::string name;
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM api_tokens WHERE tenant_id = ? AND "
                                         "account_id = ? AND id = ? RETURNING name"));
      s.Bind(1, tenant_id).Bind(2, account_id).Bind(3, token_id);
      ASSIGN_OR_RETURN(bool row, s.Step("deleting a token"));
      if (!row) return NotFoundError("token not found");
      name = s.Text(0);
      RETURN_IF_ERROR(s.Run("deleting a token"));
    }
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, token_id, name));
    return Status::Ok();
  });
}

StatusOr<TokenLookup> SqliteStore::LookupToken(const std::string& token_id) {
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare(Sql({"SELECT ", kTokenCols, ", ", kAccountColsNoStats,
                                           " FROM api_tokens t JOIN service_accounts a ON a.id = "
                                           "t.account_id WHERE t.id = ? AND a.deleted_at = 0"})));
  s.Bind(1, token_id);
  ASSIGN_OR_RETURN(bool row, s.Step("looking up a token"));
  if (!row) return NotFoundError("token not found");
  TokenLookup out;
  out.token = ReadToken(s, 0);
  int64_t seq;
  ASSIGN_OR_RETURN(out.account, ReadAccount(s, kTokenColCount, &seq));
  return out;
}

Status SqliteStore::TouchTokensLastUsed(
    const std::vector<std::pair<std::string, int64_t>>& uses) {
  if (uses.empty()) return Status::Ok();
  // In id order (neighbours share B-tree pages), a short transaction at a time: with a million
  // tokens in use a flush is ~16,000 updates a second on random pages of api_tokens, and one
  // transaction held write_mu_, and so the mover's writes, for all of them.
  std::vector<const std::pair<std::string, int64_t>*> order;
  order.reserve(uses.size());
  for (const auto& u : uses) order.push_back(&u);
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  constexpr size_t kUpdatesPerTransaction = 512;
  for (size_t from = 0; from < order.size(); from += kUpdatesPerTransaction) {
    // Not an admin change: the decision-log connection (synchronous=NORMAL) avoids an fsync.
    std::lock_guard<std::mutex> lock(write_mu_);
    Connection& c = *log_;
    Transaction tx(&c);
    RETURN_IF_ERROR(tx.status());
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1 "
                                       "AND last_used_at < ?2"));
    for (size_t i = from; i < std::min(order.size(), from + kUpdatesPerTransaction); ++i) {
      s.Reset();
      s.Bind(1, order[i]->first).Bind(2, order[i]->second);
      RETURN_IF_ERROR(s.Run("updating token last use"));
    }
    RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

StatusOr<int64_t> SqliteStore::CountTokens(const std::string& tenant_id) {
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare("SELECT COUNT(*) FROM api_tokens t JOIN service_accounts "
                                      "a ON a.id = t.account_id WHERE t.tenant_id = ? AND "
                                      "a.deleted_at = 0"));
  s.Bind(1, tenant_id);
  ASSIGN_OR_RETURN(bool row, s.Step("counting tokens"));
  return row ? s.Int(0) : 0;
}

// ---------------------------------------------------------------- audit log

Status SqliteStore::Append(AuditEntry* entry) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return InsertAudit(*admin_, clock_, entry);
}

StatusOr<Page<AuditEntry>> SqliteStore::List(const AuditQuery& query) {
  ASSIGN_OR_RETURN(int64_t before, DecodeCursor(query.cursor));
  const int limit = ClampLimit(query.limit);
  // The SQL is assembled from constant fragments; every value is bound.
  std::string sql = Sql({"SELECT ", kAuditCols, " FROM audit_log WHERE tenant_id = ?1 AND "
                                                "seq < ?2"});
  if (!query.target_id.empty()) sql += " AND target_id = ?3";
  if (!query.target_type.empty()) sql += " AND target_type = ?4";
  sql += " ORDER BY seq DESC LIMIT ?5";
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare(sql));
  s.Bind(1, query.tenant_id).Bind(2, before).Bind(5, limit + 1);
  if (!query.target_id.empty()) s.Bind(3, query.target_id);
  if (!query.target_type.empty()) s.Bind(4, query.target_type);
  return ReadPage<AuditEntry>(s, "listing the audit log", limit,
                             [](const Stmt& st, int64_t* seq) -> StatusOr<AuditEntry> {
                               ASSIGN_OR_RETURN(AuditEntry e, ReadAudit(st));
                               *seq = e.seq;
                               return e;
                             });
}

// ---------------------------------------------------------------- decision log

Status SqliteStore::AppendDecisions(std::vector<DecisionRow>* rows) {
  if (rows->empty()) return Status::Ok();
  if (!options_.decision_log) return FailedPreconditionError("the store was opened without its decision log");
  // The check path never moves rows itself (a move of 16 MiB of backlog on the event loop
  // stalled answers by ~17 ms at best, seconds on a busy machine): when the mover is that far
  // behind, the batch is refused (the server fails closed: 503) until it catches up.
  const int64_t appended = appended_bytes_.load();
  if (appended - read_bytes_.load() > options_.decision_max_backlog_bytes ||
      appended - deleted_bytes_.load() > options_.decision_max_journal_bytes) {
    return ResourceExhaustedError("the decision log is behind: its journal is over its bound");
  }
  const int64_t now = clock_.NowMillis();
  std::lock_guard<std::mutex> lock(append_mu_);
  // seq is given here, in journal order, so a reader that has read the journal to its end
  // has every row up to the newest seq (paging never skips a row).
  int64_t seq = next_seq_;
  for (DecisionRow& d : *rows) {
    d.seq = seq++;
    if (d.id.empty()) d.id = NewUlid(clock_);
    if (d.time == 0) d.time = now;
  }
  Segment& segment = segments_.back();
  const int64_t before = segment.file->end();
  Status st = segment.file->Append(*rows);
  if (!st.ok()) {
    for (DecisionRow& d : *rows) d.seq = 0;
    return st;
  }
  appended_bytes_ += segment.file->end() - before;
  segment.last_seq = seq - 1;
  next_seq_ = seq;
  if (segment.file->end() >= options_.decision_segment_bytes) {
    // The next appends go to a new segment (one open() and an 8-byte write, every few MiB);
    // if it cannot be created, this one grows until the next try.
    auto next = NewSegment(next_segment_);
    if (next.ok()) {
      ++next_segment_;
      segments_.push_back(std::move(next).value());
    }
  }
  return Status::Ok();
}

namespace {

// The query's row filters (the principal is the chunk's, filtered in SQL).
bool Matches(const DecisionQuery& q, int64_t before, const DecisionRowHead& d) {
  return d.seq < before && (!q.allowed || d.allowed == *q.allowed) &&
         (q.model.empty() || d.model == q.model) && (q.action.empty() || d.action == q.action) &&
         (q.since <= 0 || d.time >= q.since) && (q.until <= 0 || d.time < q.until);
}

}  // namespace

StatusOr<Page<DecisionRow>> SqliteStore::Query(const DecisionQuery& q) {
  if (q.tenant_id.empty()) return InvalidArgumentError("tenant_id is required", "tenant_id");
  if (!options_.decision_log) return FailedPreconditionError("the store was opened without its decision log");
  ASSIGN_OR_RETURN(int64_t before, DecodeCursor(q.cursor));
  const int limit = ClampLimit(q.limit);
  // The rows a query sees: every appended one. It reads the journal to its end into the open
  // chunks, then reads those and the table with the mover held off (ingest_mu_), so no chunk
  // moves from one to the other meanwhile. A failed write leaves its chunks sealed, and read.
  std::lock_guard<std::mutex> ingest(ingest_mu_);
  (void)MovePassLocked(/*read_all=*/true, /*seal_all=*/false);
  std::vector<const OpenChunks::Chunk*> held;
  open_.ForEach(q.tenant_id, q.principal_id, [&](const OpenChunks::Chunk& c) {
    const ChunkBuilder& b = c.builder;
    if (b.first_seq() < before && (q.since <= 0 || b.max_time() >= q.since) && (q.until <= 0 || b.min_time() < q.until)) {
      held.push_back(&c);
    }
  });
  std::sort(held.begin(), held.end(), [](const auto* a, const auto* b) { return a->builder.last_seq() > b->builder.last_seq(); });
  // Chunks newest first (by their newest row). A chunk holding a row before `before` has
  // first_seq < before and, its rows lying less than kMaxChunkSpan apart, last_seq < before +
  // kMaxChunkSpan: that bound keeps a deep page from walking every newer chunk.
  std::string sql = "SELECT last_seq, rows FROM decision_chunk WHERE tenant_id = ?1 AND "
                    "last_seq < ?2 AND first_seq < ?3";
  if (!q.principal_id.empty()) sql += " AND principal_id = ?4";
  if (q.since > 0) sql += " AND max_time >= ?5";
  if (q.until > 0) sql += " AND min_time < ?6";
  sql += " ORDER BY last_seq DESC";
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare(sql));
  const int64_t upper = before > std::numeric_limits<int64_t>::max() - kMaxChunkSpan
                            ? std::numeric_limits<int64_t>::max()
                            : before + kMaxChunkSpan;
  s.Bind(1, q.tenant_id).Bind(2, upper).Bind(3, before);
  if (!q.principal_id.empty()) s.Bind(4, q.principal_id);
  if (q.since > 0) s.Bind(5, q.since);
  if (q.until > 0) s.Bind(6, q.until);

  // The tenant's chunks of different principals overlap in seq: merge them, those of the
  // table and those held. The page is the limit + 1 newest matching rows; they are kept in a
  // min-heap by seq. Chunks come newest first (by last_seq), so once limit + 1 rows are kept a
  // chunk whose last_seq is below the oldest of them, and every chunk after it, has nothing
  // for the page. (Keeping every matching row of every chunk read, as before chunks stayed
  // open, made a deep tenant-wide page of 512-row chunks cost ~50 ms in moves.)
  std::vector<DecisionRow> decoded;
  std::vector<DecisionRow> kept;
  const auto newer = [](const DecisionRow& a, const DecisionRow& b) { return a.seq > b.seq; };  // min-heap
  const size_t want = static_cast<size_t>(limit) + 1;
  std::string blob;
  size_t next_held = 0;
  ASSIGN_OR_RETURN(bool more, s.Step("querying the decision log"));
  for (;;) {
    int64_t next = more ? s.Int(0) : std::numeric_limits<int64_t>::min();
    const bool from_held = next_held < held.size() && held[next_held]->builder.last_seq() >= next;
    if (from_held) next = held[next_held]->builder.last_seq();
    if (next == std::numeric_limits<int64_t>::min() && !from_held) break;
    if (kept.size() == want && kept.front().seq > next) break;
    decoded.clear();
    // Only rows that would enter the page now are built (the bar only rises while a chunk
    // is decoded, so some built rows are dropped below, never the other way round).
    const int64_t bar = kept.size() == want ? kept.front().seq : std::numeric_limits<int64_t>::min();
    // A chunk's rows ascend by seq, so of its matching rows only the last `want` can enter.
    const auto keep = [&](const DecisionRowHead& d) { return d.seq > bar && Matches(q, before, d); };
    std::string_view chunk;
    if (from_held) {
      held[next_held++]->builder.Peek(&blob);
      chunk = blob;
    } else {
      chunk = s.BlobView(1);
    }
    RETURN_IF_ERROR(DecodeChunkIf(chunk, keep, want, &decoded));
    if (!from_held) {
      ASSIGN_OR_RETURN(more, s.Step("querying the decision log"));
    }
    for (DecisionRow& d : decoded) {
      if (kept.size() < want) {
        kept.push_back(std::move(d));
        std::push_heap(kept.begin(), kept.end(), newer);
      } else if (d.seq > kept.front().seq) {
        std::pop_heap(kept.begin(), kept.end(), newer);
        kept.back() = std::move(d);
        std::push_heap(kept.begin(), kept.end(), newer);
      }
    }
  }
  std::sort(kept.begin(), kept.end(), newer);  // newest first
  Page<DecisionRow> page;
  page.items = std::move(kept);
  if (page.items.size() > static_cast<size_t>(limit)) {
    page.items.resize(limit);
    page.next_cursor = EncodeCursor(page.items.back().seq);
  }
  return page;
}

StatusOr<int64_t> SqliteStore::Prune(const Retention& retention, int batch_size) {
  if (batch_size <= 0) return InvalidArgumentError("batch_size must be positive", "batch_size");
  const int64_t time_cutoff = clock_.NowMillis() - retention.max_age_ms;
  if (options_.decision_log) {
    // Retention covers the rows still held in open chunks too: those it would remove (too old,
    // or of a principal over its budget) are written first, so that the passes below see them.
    // With days of age and a million rows a principal, that is one busy principal's chunk now
    // and then.
    std::lock_guard<std::mutex> ingest(ingest_mu_);
    RETURN_IF_ERROR(MovePassLocked(/*read_all=*/true, /*seal_all=*/false));
    {
      std::lock_guard<std::mutex> write(write_mu_);
      open_.SealWhere([&](const OpenChunks::Chunk& c) {
        if (retention.max_age_ms > 0 && c.builder.min_time() < time_cutoff) return true;
        const int64_t limit =
            c.principal_id().empty() ? retention.max_unauthenticated_rows : retention.max_rows_per_principal;
        if (limit <= 0) return false;
        auto it = principal_rows_.find(c.key);
        return (it == principal_rows_.end() ? 0 : it->second) + static_cast<int64_t>(c.builder.rows()) > limit;
      });
    }
    RETURN_IF_ERROR(WriteSealedLocked());
    held_bytes_ = static_cast<int64_t>(open_.MemoryBytes());
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  Transaction tx(&*log_);
  RETURN_IF_ERROR(tx.status());
  int64_t deleted = 0;
  if (retention.max_age_ms > 0) {
    ASSIGN_OR_RETURN(deleted, PruneByAgeLocked(time_cutoff, batch_size));
  }
  if (deleted < batch_size && (retention.max_rows_per_principal > 0 || retention.max_unauthenticated_rows > 0)) {
    ASSIGN_OR_RETURN(int64_t by_rows, PruneByRowsLocked(retention, batch_size - deleted));
    deleted += by_rows;
  }
  RETURN_IF_ERROR(tx.Commit());
  return deleted;
}

namespace {

// What Prune reads of a chunk before changing the table (the statement is reset first).
struct ChunkHead {
  int64_t first_seq = 0;
  int64_t max_time = 0;
  int64_t rows = 0;
  std::string key;  // PrincipalKey of its tenant and principal
};

// Reads columns first_seq, max_time, row_count, tenant_id, principal_id from `s` (in that
// order, from column 0).
ChunkHead ReadHead(const Stmt& s) {
  return ChunkHead{s.Int(0), s.Int(1), s.Int(2), PrincipalKey(s.Text(3), s.Text(4))};
}

// Deletes the chunk; returns its row count.
StatusOr<int64_t> DeleteChunk(Connection& c, const ChunkHead& head,
                              std::unordered_map<std::string, int64_t>* principal_rows) {
  ASSIGN_OR_RETURN(Stmt del, c.Prepare("DELETE FROM decision_chunk WHERE first_seq = ?"));
  del.Bind(1, head.first_seq);
  RETURN_IF_ERROR(del.Run("pruning the decision log"));
  (*principal_rows)[head.key] -= head.rows;
  return head.rows;
}

// Deletes the chunk and stores again its rows (decoded: `rows`) that `keep` accepts. Returns
// how many rows went.
StatusOr<int64_t> RewriteChunk(Connection& c, const ChunkHead& head, const std::vector<DecisionRow>& rows,
                               const std::function<bool(const DecisionRow&)>& keep,
                               std::unordered_map<std::string, int64_t>* principal_rows) {
  RETURN_IF_ERROR(DeleteChunk(c, head, principal_rows).status());
  int64_t gone = 0;
  ChunkWriter writer(c, principal_rows);  // writes nothing when nothing is kept
  for (const DecisionRow& d : rows) {
    if (keep(d)) {
      RETURN_IF_ERROR(writer.Add(d));
    } else {
      ++gone;
    }
  }
  RETURN_IF_ERROR(writer.Finish());
  return gone;
}

}  // namespace

StatusOr<int64_t> SqliteStore::PruneByAgeLocked(int64_t time_cutoff, int64_t budget) {
  Connection& c = *log_;
  int64_t deleted = 0;
  std::vector<DecisionRow> rows;
  // The oldest chunks first. The oldest row of all is in the first one; when none of its rows
  // is too old, no later row is: rows are appended in time order. A rewritten chunk starts at a
  // later seq, so the next read meets it again. A chunk that goes whole is not decoded.
  while (deleted < budget) {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT first_seq, max_time, row_count, tenant_id, principal_id, "
                                       "min_time, rows, last_seq FROM decision_chunk ORDER BY first_seq LIMIT 1"));
    ASSIGN_OR_RETURN(bool row, s.Step("pruning the decision log"));
    // Not a chunk above the watermark: a principal's newest stored seq is what a replay after
    // a crash skips to (it comes within the mover's age bound).
    if (!row || s.Int(5) >= time_cutoff || s.Int(7) > durable_seq_.load()) break;
    const ChunkHead head = ReadHead(s);
    int64_t room = budget - deleted;
    const bool whole = head.max_time < time_cutoff && head.rows <= room;
    rows.clear();
    if (!whole) RETURN_IF_ERROR(DecodeChunk(s.BlobView(6), &rows));
    s.Reset();
    ASSIGN_OR_RETURN(int64_t gone, whole ? DeleteChunk(c, head, &principal_rows_)
                                         : RewriteChunk(c, head, rows, [&](const DecisionRow& d) {
                                             if (d.time >= time_cutoff || room == 0) return true;
                                             --room;
                                             return false;
                                           }, &principal_rows_));
    deleted += gone;
    if (gone == 0) break;
  }
  return deleted;
}

StatusOr<int64_t> SqliteStore::PruneByRowsLocked(const Retention& retention, int64_t budget) {
  Connection& c = *log_;
  std::vector<std::pair<std::string, int64_t>> over;  // (key, rows beyond its budget by the hint)
  for (const auto& [key, n] : principal_rows_) {
    const bool anonymous = key.back() == '\0';  // principal_id ""
    const int64_t limit = anonymous ? retention.max_unauthenticated_rows : retention.max_rows_per_principal;
    if (limit > 0 && n > limit) over.emplace_back(key, n - limit);
  }
  std::sort(over.begin(), over.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  int64_t deleted = 0;
  std::vector<DecisionRow> rows;
  for (const auto& [key, hinted] : over) {
    if (deleted >= budget) break;
    const size_t zero = key.find('\0');
    const std::string tenant = key.substr(0, zero), principal = key.substr(zero + 1);
    const int64_t limit = principal.empty() ? retention.max_unauthenticated_rows : retention.max_rows_per_principal;
    int64_t stored = 0;
    {
      ASSIGN_OR_RETURN(Stmt n, c.Prepare("SELECT COALESCE(SUM(row_count), 0) FROM decision_chunk "
                                         "WHERE tenant_id = ? AND principal_id = ?"));
      n.Bind(1, tenant).Bind(2, principal);
      ASSIGN_OR_RETURN(bool row, n.Step("counting a principal's decisions"));
      stored = row ? n.Int(0) : 0;
    }
    principal_rows_[key] = stored;
    int64_t excess = std::min(stored - limit, budget - deleted);
    // Its oldest chunks first (the principal index orders them by last_seq); a chunk that goes
    // whole is not decoded.
    while (excess > 0) {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT first_seq, max_time, row_count, tenant_id, principal_id, rows "
                                         "FROM decision_chunk WHERE tenant_id = ? AND principal_id = ? "
                                         "ORDER BY last_seq LIMIT 1"));
      s.Bind(1, tenant).Bind(2, principal);
      ASSIGN_OR_RETURN(bool row, s.Step("pruning a principal's decisions"));
      if (!row) break;
      const ChunkHead head = ReadHead(s);
      const bool whole = head.rows <= excess;
      rows.clear();
      if (!whole) RETURN_IF_ERROR(DecodeChunk(s.BlobView(5), &rows));
      s.Reset();
      int64_t room = excess;
      ASSIGN_OR_RETURN(int64_t gone, whole ? DeleteChunk(c, head, &principal_rows_)
                                           : RewriteChunk(c, head, rows, [&](const DecisionRow&) {
                                               if (room == 0) return true;
                                               --room;
                                               return false;  // rows come oldest first
                                             }, &principal_rows_));
      excess -= gone;
      deleted += gone;
      if (gone == 0) break;
    }
  }
  return deleted;
}

StatusOr<int64_t> SqliteStore::CountDecisions(const std::string& tenant_id,
                                              const std::string& principal_id) {
  if (!options_.decision_log) return FailedPreconditionError("the store was opened without its decision log");
  std::lock_guard<std::mutex> ingest(ingest_mu_);  // as Query: the table and the open chunks at one moment
  (void)MovePassLocked(/*read_all=*/true, /*seal_all=*/false);
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare(principal_id.empty()
                                          ? "SELECT COALESCE(SUM(row_count), 0) FROM decision_chunk "
                                            "WHERE tenant_id = ?1"
                                          : "SELECT COALESCE(SUM(row_count), 0) FROM decision_chunk "
                                            "WHERE tenant_id = ?1 AND principal_id = ?2"));
  s.Bind(1, tenant_id);
  if (!principal_id.empty()) s.Bind(2, principal_id);
  ASSIGN_OR_RETURN(bool row, s.Step("counting decisions"));
  return (row ? s.Int(0) : 0) + open_.CountRows(tenant_id, principal_id);
}

// ---------------------------------------------------------------- health

// ---------------------------------------------------------------- directory

std::string_view DirectoryKindName(DirectoryKind kind) {
  return kind == DirectoryKind::kSubject ? "subject" : "resource";
}

namespace {

constexpr char kDirectoryCols[] = "tenant_id, kind, type, id, roles, properties, updated_at";

StatusOr<DirectoryEntry> ReadDirectoryEntry(const Stmt& s) {
  DirectoryEntry e;
  e.tenant_id = s.Text(0);
  e.kind = s.Text(1) == "subject" ? DirectoryKind::kSubject : DirectoryKind::kResource;
  e.type = s.Text(2);
  e.id = s.Text(3);
  ASSIGN_OR_RETURN(json roles, ParseJsonColumn(s.Text(4), "roles"));
  if (!roles.is_array()) return InternalError("stored roles are not an array");
  for (const auto& r : roles) {
    if (r.is_string()) e.roles.push_back(r.get<std::string>());
  }
  ASSIGN_OR_RETURN(e.properties, ParseJsonColumn(s.Text(5), "properties"));
  e.updated_at = s.Int(6);
  return e;
}

}  // namespace

Status SqliteStore::PutDirectoryEntries(const std::vector<DirectoryEntry>& entries, const AuditEntry* audit) {
  for (size_t i = 0; i < entries.size(); ++i) RETURN_IF_ERROR(ValidateDirectoryEntry(entries[i], i));
  return AdminWrite([&](Connection& c) -> Status {
    const int64_t now = clock_.NowMillis();
    ASSIGN_OR_RETURN(Stmt s, c.Prepare(Sql({"INSERT OR REPLACE INTO directory_entries (", kDirectoryCols,
                                            ") VALUES (?, ?, ?, ?, ?, ?, ?)"})));
    for (const DirectoryEntry& e : entries) {
      s.Bind(1, e.tenant_id)
          .Bind(2, DirectoryKindName(e.kind))
          .Bind(3, e.type)
          .Bind(4, e.id)
          .Bind(5, DumpJson(json(e.roles)))
          .Bind(6, DumpJson(e.properties))
          .Bind(7, now);
      RETURN_IF_ERROR(s.Run("writing a directory entry"));
      s.Reset();
    }
    if (audit != nullptr && !entries.empty()) {
      RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, entries.front().tenant_id,
                                 entries.size() == 1 ? entries.front().type + "/" + entries.front().id : "", ""));
    }
    return Status::Ok();
  });
}

StatusOr<DirectoryEntry> SqliteStore::GetDirectoryEntry(const std::string& tenant_id, DirectoryKind kind,
                                                        const std::string& type, const std::string& id) {
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare(Sql({"SELECT ", kDirectoryCols,
                                           " FROM directory_entries WHERE tenant_id = ? AND kind = ? AND "
                                           "type = ? AND id = ?"})));
  s.Bind(1, tenant_id).Bind(2, DirectoryKindName(kind)).Bind(3, type).Bind(4, id);
  ASSIGN_OR_RETURN(bool row, s.Step("reading a directory entry"));
  if (!row) return NotFoundError("no such directory entry");
  return ReadDirectoryEntry(s);
}

StatusOr<std::vector<DirectoryEntry>> SqliteStore::ListDirectoryEntries(const DirectoryQuery& query) {
  auto r = AcquireReader();
  ASSIGN_OR_RETURN(Stmt s, r->Prepare(Sql({"SELECT ", kDirectoryCols,
                                           " FROM directory_entries WHERE tenant_id = ? AND kind = ? AND "
                                           "type = ? AND id > ? ORDER BY id LIMIT ?"})));
  s.Bind(1, query.tenant_id)
      .Bind(2, DirectoryKindName(query.kind))
      .Bind(3, query.type)
      .Bind(4, query.after_id)
      .Bind(5, ClampLimit(query.limit));
  std::vector<DirectoryEntry> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step("listing directory entries"));
    if (!row) break;
    ASSIGN_OR_RETURN(DirectoryEntry e, ReadDirectoryEntry(s));
    out.push_back(std::move(e));
  }
  return out;
}

Status SqliteStore::DeleteDirectoryEntry(const std::string& tenant_id, DirectoryKind kind, const std::string& type,
                                         const std::string& id, const AuditEntry* audit) {
  return AdminWrite([&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM directory_entries WHERE tenant_id = ? AND kind = ? AND "
                                       "type = ? AND id = ?"));
    s.Bind(1, tenant_id).Bind(2, DirectoryKindName(kind)).Bind(3, type).Bind(4, id);
    RETURN_IF_ERROR(s.Run("deleting a directory entry"));
    if (c.Changes() == 0) return NotFoundError("no such directory entry");
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, type + "/" + id, ""));
    return Status::Ok();
  });
}

Status SqliteStore::Ping() {
  std::lock_guard<std::mutex> lock(write_mu_);
  Connection& c = *log_;
  Transaction tx(&c);
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO health (id, pinged_at) VALUES (1, ?) "
                                     "ON CONFLICT (id) DO UPDATE SET pinged_at = excluded.pinged_at"));
  s.Bind(1, clock_.NowMillis());
  RETURN_IF_ERROR(s.Run("writing the health row"));
  return tx.Commit();
}

}  // namespace warden::store
