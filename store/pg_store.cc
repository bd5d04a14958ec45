#include "store/pg_store.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <unordered_map>

#include "common/ids.h"
#include "store/decision_journal.h"
#include "store/pg_conn.h"
#include "store/pg_schema.h"
#include "store/row_codec.h"

namespace warden::store {

namespace {

using nlohmann::json;

// Advisory locks (pg_advisory_xact_lock keys) of warden's transactions.
constexpr int64_t kAdminLock = 0x77617264656e01;     // every admin write
constexpr int64_t kMigrationLock = 0x77617264656e02;  // Open's migrations
constexpr char kChannel[] = "warden_changes";
constexpr int64_t kDayMs = 86'400'000;
// Rows outside these days (2000-01-01 .. 2200-01-01) go to the default partition.
constexpr int64_t kFirstDay = 10957, kLastDay = 84006;

Status StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const StatusOr<T>& s) { return s.status(); }

// Appends $n for the next parameter.
class Sql {
 public:
  explicit Sql(std::string text) : text_(std::move(text)) {}
  template <typename V>
  Sql& Param(std::string_view before, V&& value, std::string_view after = "") {
    params_.Add(std::forward<V>(value));
    text_.append(before).append("$").append(std::to_string(params_.size())).append(after);
    return *this;
  }
  Sql& Text(std::string_view more) {
    text_.append(more);
    return *this;
  }
  const std::string& text() const { return text_; }
  const PgParams& params() const { return params_; }

 private:
  std::string text_;
  PgParams params_;
};

// PostgreSQL text holds neither NUL nor invalid UTF-8: both become U+FFFD.
std::string CleanText(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && c != 0 && i + len <= in.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(in[i + k]) >> 6) == 2;
    if (ok && len == 2) ok = c >= 0xC2;
    if (ok && len == 3) {
      const unsigned char c1 = static_cast<unsigned char>(in[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (ok && len == 4) {
      const unsigned char c1 = static_cast<unsigned char>(in[i + 1]);
      ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      i += 1;
    }
  }
  return out;
}

// A PostgreSQL array literal of text elements.
class TextArray {
 public:
  void Add(std::string_view v) {
    out_.push_back(out_.empty() ? '{' : ',');
    out_.push_back('"');
    for (char ch : CleanText(v)) {
      if (ch == '"' || ch == '\\') out_.push_back('\\');
      out_.push_back(ch);
    }
    out_.push_back('"');
  }
  void Add(int64_t v) {
    out_.push_back(out_.empty() ? '{' : ',');
    out_.append(std::to_string(v));
  }
  void Add(bool v) {
    out_.push_back(out_.empty() ? '{' : ',');
    out_.push_back(v ? 't' : 'f');
  }
  std::string Finish() const { return out_.empty() ? "{}" : out_ + "}"; }

 private:
  std::string out_;
};

// ---- row readers (column lists and readers side by side) ----

constexpr char kUserCols[] =
    "seq, id, tenant_id, email, name, roles, attributes, enabled, password_hash, created_at, updated_at";

StatusOr<User> ReadUser(const PgResult& r, int row, int64_t* seq) {
  User u;
  *seq = r.Int(row, 0);
  u.id = r.Text(row, 1);
  u.tenant_id = r.Text(row, 2);
  u.email = r.Text(row, 3);
  u.name = r.Text(row, 4);
  ASSIGN_OR_RETURN(u.roles, ParseRoles(r.Text(row, 5)));
  ASSIGN_OR_RETURN(u.attributes, ParseJsonColumn(r.Text(row, 6), "attributes"));
  u.enabled = r.Bool(row, 7);
  u.password_hash = r.Text(row, 8);
  u.created_at = r.Int(row, 9);
  u.updated_at = r.Int(row, 10);
  return u;
}

constexpr char kAccountCols[] =
    "a.seq, a.id, a.tenant_id, a.name, a.description, a.enabled, a.policy_yaml, a.policy_version, "
    "a.attributes, a.created_at, a.created_by_type, a.created_by_id, a.updated_at, a.deleted_at, "
    "(SELECT COUNT(*) FROM api_tokens t WHERE t.account_id = a.id), "
    "(SELECT COALESCE(MAX(t.last_used_at), 0) FROM api_tokens t WHERE t.account_id = a.id)";
// Without the token statistics (the check path's lookup).
constexpr char kAccountColsNoStats[] =
    "a.seq, a.id, a.tenant_id, a.name, a.description, a.enabled, a.policy_yaml, a.policy_version, "
    "a.attributes, a.created_at, a.created_by_type, a.created_by_id, a.updated_at, a.deleted_at, 0, 0";

StatusOr<ServiceAccount> ReadAccount(const PgResult& r, int row, int col, int64_t* seq) {
  ServiceAccount a;
  *seq = r.Int(row, col + 0);
  a.id = r.Text(row, col + 1);
  a.tenant_id = r.Text(row, col + 2);
  a.name = r.Text(row, col + 3);
  a.description = r.Text(row, col + 4);
  a.enabled = r.Bool(row, col + 5);
  a.policy_yaml = r.Text(row, col + 6);
  a.policy_version = r.Int(row, col + 7);
  ASSIGN_OR_RETURN(a.attributes, ParseJsonColumn(r.Text(row, col + 8), "attributes"));
  a.created_at = r.Int(row, col + 9);
  a.created_by_type = r.Text(row, col + 10);
  a.created_by_id = r.Text(row, col + 11);
  a.updated_at = r.Int(row, col + 12);
  a.deleted_at = r.Int(row, col + 13);
  a.token_count = r.Int(row, col + 14);
  a.last_used_at = r.Int(row, col + 15);
  return a;
}

constexpr char kTokenCols[] =
    "t.id, t.tenant_id, t.account_id, t.name, t.secret_hash, t.display_prefix, t.created_at, "
    "t.created_by_type, t.created_by_id, t.last_used_at, t.expires_at";
constexpr int kTokenColCount = 11;

ApiTokenRecord ReadToken(const PgResult& r, int row, int col) {
  ApiTokenRecord t;
  t.id = r.Text(row, col + 0);
  t.tenant_id = r.Text(row, col + 1);
  t.account_id = r.Text(row, col + 2);
  t.name = r.Text(row, col + 3);
  t.secret_hash = r.Bytes(row, col + 4);
  t.display_prefix = r.Text(row, col + 5);
  t.created_at = r.Int(row, col + 6);
  t.created_by_type = r.Text(row, col + 7);
  t.created_by_id = r.Text(row, col + 8);
  t.last_used_at = r.Int(row, col + 9);
  t.expires_at = r.Int(row, col + 10);
  return t;
}

constexpr char kSessionCols[] = "id, tenant_id, user_id, token_hash, csrf_token, created_at, expires_at";

Session ReadSession(const PgResult& r, int row) {
  return Session{r.Text(row, 0), r.Text(row, 1), r.Text(row, 2), r.Text(row, 3),
                 r.Text(row, 4), r.Int(row, 5),  r.Int(row, 6)};
}

constexpr char kAuditCols[] =
    "seq, id, tenant_id, time, actor_type, actor_id, action, target_type, target_id, target_name, details";

StatusOr<AuditEntry> ReadAudit(const PgResult& r, int row) {
  AuditEntry e;
  e.seq = r.Int(row, 0);
  e.id = r.Text(row, 1);
  e.tenant_id = r.Text(row, 2);
  e.time = r.Int(row, 3);
  e.actor_type = r.Text(row, 4);
  e.actor_id = r.Text(row, 5);
  e.action = r.Text(row, 6);
  e.target_type = r.Text(row, 7);
  e.target_id = r.Text(row, 8);
  e.target_name = r.Text(row, 9);
  ASSIGN_OR_RETURN(e.details, ParseJsonColumn(r.Text(row, 10), "audit details"));
  return e;
}

// The text columns of decision_log, in the order of kDecisionTextCols.
constexpr std::string DecisionRow::*kDecisionText[] = {
    &DecisionRow::id,          &DecisionRow::tenant_id,   &DecisionRow::principal_type, &DecisionRow::principal_id,
    &DecisionRow::principal_name, &DecisionRow::token_id, &DecisionRow::model,          &DecisionRow::action,
    &DecisionRow::resource_id, &DecisionRow::reason,      &DecisionRow::rule,           &DecisionRow::eval_error,
    &DecisionRow::policy_revision, &DecisionRow::client_addr, &DecisionRow::method,     &DecisionRow::path,
    &DecisionRow::request_id,  &DecisionRow::caller_id,   &DecisionRow::caller_name};
constexpr char kDecisionTextCols[] =
    "id, tenant_id, principal_type, principal_id, principal_name, token_id, model, action, resource_id, reason, "
    "rule, eval_error, policy_revision, client_addr, method, path, request_id, caller_id, caller_name";
// seq, the text columns, then the others.
const std::string kDecisionCols = std::string("seq, ") + kDecisionTextCols + ", time, allowed, latency_us";

DecisionRow ReadDecision(const PgResult& r, int row) {
  DecisionRow d;
  d.seq = r.Int(row, 0);
  int col = 1;
  for (auto member : kDecisionText) d.*member = r.Text(row, col++);
  d.time = r.Int(row, col++);
  d.allowed = r.Bool(row, col++);
  d.latency_us = r.Int(row, col++);
  return d;
}

// Rows fetched with LIMIT limit + 1, newest first, into a page.
template <typename T, typename Read>
StatusOr<Page<T>> ReadPage(const PgResult& r, int limit, Read read) {
  Page<T> page;
  int64_t last_seq = 0;
  for (int i = 0; i < r.rows() && i < limit; ++i) {
    int64_t seq = 0;
    ASSIGN_OR_RETURN(T item, read(r, i, &seq));
    page.items.push_back(std::move(item));
    last_seq = seq;
  }
  if (r.rows() > limit) page.next_cursor = EncodeCursor(last_seq);
  return page;
}

// ---- shared queries ----

StatusOr<ServiceAccount> LoadAccount(PgConnection& c, const std::string& tenant_id, const std::string& account_id,
                                     bool include_deleted) {
  PgParams p;
  p.Add(tenant_id).Add(account_id).Add(include_deleted);
  ASSIGN_OR_RETURN(PgResult r, c.Exec(std::string("SELECT ") + kAccountCols +
                                          " FROM service_accounts a WHERE a.tenant_id = $1 AND a.id = $2 AND "
                                          "($3::boolean OR a.deleted_at = 0)",
                                      p, "reading a service account"));
  if (r.rows() == 0) return NotFoundError("service account not found");
  int64_t seq;
  return ReadAccount(r, 0, 0, &seq);
}

StatusOr<User> LoadUser(PgConnection& c, const std::string& tenant_id, const std::string& user_id) {
  PgParams p;
  p.Add(tenant_id).Add(user_id);
  ASSIGN_OR_RETURN(PgResult r, c.Exec(std::string("SELECT ") + kUserCols + " FROM users WHERE tenant_id = $1 AND id = $2",
                                      p, "reading a user"));
  if (r.rows() == 0) return NotFoundError("user not found");
  int64_t seq;
  return ReadUser(r, 0, &seq);
}

StatusOr<Tenant> LoadTenant(PgConnection& c, bool by_token, const std::string& value) {
  PgParams p;
  p.Add(value);
  ASSIGN_OR_RETURN(PgResult r, c.Exec(by_token ? "SELECT id, name, tenant_token, created_at FROM tenants WHERE tenant_token = $1"
                                               : "SELECT id, name, tenant_token, created_at FROM tenants WHERE id = $1",
                                      p, "reading a tenant"));
  if (r.rows() == 0) return NotFoundError("tenant not found");
  return Tenant{r.Text(0, 0), r.Text(0, 1), r.Text(0, 2), r.Int(0, 3)};
}

Status InsertAudit(PgConnection& c, const Clock& clock, AuditEntry* e) {
  if (e->id.empty()) e->id = NewUlid(clock);
  if (e->time == 0) e->time = clock.NowMillis();
  if (e->tenant_id.empty()) return InvalidArgumentError("audit entry without tenant", "tenant_id");
  if (e->action.empty()) return InvalidArgumentError("audit entry without action", "action");
  PgParams p;
  p.Add(e->id).Add(e->tenant_id).Add(e->time).Add(e->actor_type).Add(e->actor_id).Add(e->action);
  p.Add(e->target_type).Add(e->target_id).Add(e->target_name).Add(DumpJson(e->details));
  ASSIGN_OR_RETURN(PgResult r, c.Exec("INSERT INTO audit_log (id, tenant_id, time, actor_type, actor_id, action, "
                                      "target_type, target_id, target_name, details) VALUES "
                                      "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq",
                                      p, "appending an audit entry"));
  e->seq = r.Int(0, 0);
  return Status::Ok();
}

Status MaybeAudit(PgConnection& c, const Clock& clock, const AuditEntry* audit, const std::string& tenant_id,
                  const std::string& target_id, const std::string& target_name) {
  if (audit == nullptr) return Status::Ok();
  AuditEntry e = FillAudit(*audit, tenant_id, target_id, target_name);
  return InsertAudit(c, clock, &e);
}

const char* KindName(Change::Kind kind) {
  switch (kind) {
    case Change::Kind::kAccount: return "account";
    case Change::Kind::kToken: return "token";
    case Change::Kind::kTokenCreated: return "token_created";
    case Change::Kind::kTenant: return "tenant";
    case Change::Kind::kEverything: break;
  }
  return "everything";
}

Change::Kind KindOf(std::string_view name) {
  if (name == "account") return Change::Kind::kAccount;
  if (name == "token") return Change::Kind::kToken;
  if (name == "token_created") return Change::Kind::kTokenCreated;
  if (name == "tenant") return Change::Kind::kTenant;
  return Change::Kind::kEverything;
}

// Records a change for the other replicas, in the caller's transaction: the `changes` row and
// a notification, both delivered when it commits.
Status Publish(PgConnection& c, const Clock& clock, Change::Kind kind, const std::string& tenant_id,
               const std::string& id) {
  PgParams p;
  p.Add(clock.NowMillis()).Add(KindName(kind)).Add(tenant_id).Add(id).Add(kChannel);
  return c.Exec("WITH c AS (INSERT INTO changes (time, kind, tenant_id, target_id) VALUES ($1, $2, $3, $4) "
                "RETURNING seq) SELECT pg_notify($5, seq::text) FROM c",
                p, "publishing a change")
      .status();
}

Status AccountNameError(Status st) {
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("a service account with this name already exists", "name");
  }
  return st;
}

Status UserWriteError(Status st) {
  if (st.code() == StatusCode::kAlreadyExists) return AlreadyExistsError("a user with this email already exists", "email");
  if (st.code() == StatusCode::kNotFound) return NotFoundError("tenant not found");
  return st;
}

StatusOr<Tenant> InsertTenant(PgConnection& c, const Clock& clock, const std::string& id, const std::string& name) {
  if (id.empty()) return InvalidArgumentError("a tenant needs an id", "id");
  Tenant t{id, name.empty() ? id : name, NewUuid(), clock.NowMillis()};
  PgParams p;
  p.Add(t.id).Add(t.name).Add(t.tenant_token).Add(t.created_at);
  RETURN_IF_ERROR(c.Exec("INSERT INTO tenants (id, name, tenant_token, created_at) VALUES ($1, $2, $3, $4)", p,
                         "creating tenant " + id)
                      .status());
  RETURN_IF_ERROR(Publish(c, clock, Change::Kind::kTenant, t.id, t.id));
  return t;
}

StatusOr<ServiceAccount> InsertAccount(PgConnection& c, const Clock& clock, const ServiceAccount& account) {
  RETURN_IF_ERROR(ValidateAccount(account));
  ServiceAccount a = NewAccountRow(account, clock.NowMillis(), account.id.empty() ? NewUlid(clock) : "");
  {
    PgParams p;
    p.Add(a.id).Add(a.tenant_id).Add(a.name).Add(a.description).Add(a.enabled).Add(a.policy_yaml);
    p.Add(a.policy_version).Add(DumpJson(a.attributes)).Add(a.created_at).Add(a.created_by_type);
    p.Add(a.created_by_id).Add(a.updated_at);
    Status st = c.Exec("INSERT INTO service_accounts (id, tenant_id, name, description, enabled, policy_yaml, "
                       "policy_version, attributes, created_at, created_by_type, created_by_id, updated_at, "
                       "deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0)",
                       p, "creating a service account")
                    .status();
    if (st.code() == StatusCode::kNotFound) return NotFoundError("tenant not found");
    RETURN_IF_ERROR(AccountNameError(st));
  }
  PgParams p;
  p.Add(a.tenant_id).Add(a.id).Add(a.policy_yaml).Add(a.created_at).Add(a.created_by_type).Add(a.created_by_id);
  RETURN_IF_ERROR(c.Exec("INSERT INTO service_account_policy_versions (tenant_id, account_id, version, policy_yaml, "
                         "created_at, actor_type, actor_id) VALUES ($1, $2, 1, $3, $4, $5, $6)",
                         p, "storing policy version 1")
                      .status());
  return a;
}

StatusOr<ApiTokenRecord> InsertToken(PgConnection& c, const Clock& clock, const ApiTokenRecord& token) {
  RETURN_IF_ERROR(ValidateToken(token));
  ApiTokenRecord t = token;
  if (t.created_at == 0) t.created_at = clock.NowMillis();
  RETURN_IF_ERROR(LoadAccount(c, t.tenant_id, t.account_id, false).status());
  PgParams p;
  p.Add(t.id).Add(t.tenant_id).Add(t.account_id).Add(t.name).AddBytes(t.secret_hash).Add(t.display_prefix);
  p.Add(t.created_at).Add(t.created_by_type).Add(t.created_by_id).Add(t.last_used_at).Add(t.expires_at);
  Status st = c.Exec("INSERT INTO api_tokens (id, tenant_id, account_id, name, secret_hash, display_prefix, "
                     "created_at, created_by_type, created_by_id, last_used_at, expires_at) VALUES "
                     "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                     p, "creating a token")
                  .status();
  if (st.code() == StatusCode::kAlreadyExists) return AlreadyExistsError("a token with this id already exists", "id");
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(Publish(c, clock, Change::Kind::kTokenCreated, t.tenant_id, t.id));
  return t;
}

Status Migrate(PgConnection& c, const Clock& clock) {
  const auto& migrations = PgMigrations();
  const int64_t known = static_cast<int64_t>(migrations.size());
  while (true) {
    PgTransaction tx(&c);
    RETURN_IF_ERROR(tx.status());
    PgParams lock;
    lock.Add(kMigrationLock);
    RETURN_IF_ERROR(c.Exec("SELECT pg_advisory_xact_lock($1)", lock, "locking the schema").status());
    RETURN_IF_ERROR(c.Simple("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, "
                             "applied_at BIGINT NOT NULL)",
                             "creating the migrations table"));
    ASSIGN_OR_RETURN(PgResult r, c.Exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", "reading the schema version"));
    const int64_t current = r.Int(0, 0);
    if (current > known) {
      return FailedPreconditionError("database schema version " + std::to_string(current) +
                                     " is newer than this warden supports (schema version " + std::to_string(known) +
                                     "); upgrade warden");
    }
    if (current == known) return tx.Commit();
    RETURN_IF_ERROR(c.Simple(migrations[current], "applying schema migration " + std::to_string(current + 1)));
    PgParams p;
    p.Add(current + 1).Add(clock.NowMillis());
    RETURN_IF_ERROR(c.Exec("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", p,
                           "recording a schema migration")
                        .status());
    RETURN_IF_ERROR(tx.Commit());
  }
}

// True when `st` says the connection it ran on was lost (worth one retry on a fresh one).
bool Lost(const Status& st, const PgConnection& c) { return st.code() == StatusCode::kUnavailable && c.broken(); }

}  // namespace

// ---------------------------------------------------------------- frame

template <typename Body>
auto PgStore::WithConnection(Body&& body) {
  using Result = decltype(body(std::declval<PgConnection&>()));
  for (int attempt = 0;; ++attempt) {
    auto lease = pool_->Acquire();
    if (!lease.ok()) return Result(lease.status());
    Result result = body(**lease);
    if (result.ok() || attempt > 0 || !Lost(StatusOf(result), **lease)) return result;
  }
}

template <typename Body>
auto PgStore::AdminWrite(Body&& body) {
  using Result = decltype(body(std::declval<PgConnection&>()));
  for (int attempt = 0;; ++attempt) {
    auto lease = pool_->Acquire();
    if (!lease.ok()) return Result(lease.status());
    PgConnection& c = **lease;
    bool commit_sent = false;
    Result result = [&]() -> Result {
      PgTransaction tx(&c);
      if (!tx.status().ok()) return Result(tx.status());
      PgParams lock;
      lock.Add(kAdminLock);
      auto locked = c.Exec("SELECT pg_advisory_xact_lock($1)", lock, "locking admin writes");
      if (!locked.ok()) return Result(locked.status());
      Result r = body(c);
      if (!r.ok()) return r;
      Status committed = tx.Commit();
      commit_sent = true;
      if (!committed.ok()) return Result(committed);
      return r;
    }();
    if (result.ok() || attempt > 0 || commit_sent || !Lost(StatusOf(result), c)) return result;
  }
}

// ---------------------------------------------------------------- open

int PgStore::SchemaVersion() { return static_cast<int>(PgMigrations().size()); }

PgStore::PgStore(std::string url, const Clock& clock, Options options)
    : url_(std::move(url)), clock_(clock), options_(options) {
  PgPool::Options pool;
  pool.size = std::max(1, options.pool_size);
  pool_ = std::make_unique<PgPool>(url_, pool);
}

PgStore::~PgStore() {
  StopListening();
  {
    std::lock_guard<std::mutex> lock(spill_mu_);
    spill_stop_ = true;
  }
  spill_cv_.notify_all();
  if (spiller_.joinable()) spiller_.join();  // what is left stays in the file for the next Open
}

void PgStore::StopListening() {
  std::lock_guard<std::mutex> lock(feed_mu_);
  stop_ = true;
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
  if (listen_.joinable()) listen_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  wake_fd_ = -1;
}

StatusOr<std::unique_ptr<PgStore>> PgStore::Open(const std::string& url, const Clock& clock, Options options) {
  std::unique_ptr<PgStore> store(new PgStore(url, clock, options));
  ASSIGN_OR_RETURN(auto lease, store->pool_->Acquire());
  RETURN_IF_ERROR(Migrate(*lease, clock));
  ASSIGN_OR_RETURN(PgResult r, lease->Exec("SELECT COALESCE(MAX(seq), 0) FROM changes", "reading the change counter"));
  store->changes_seen_ = r.Int(0, 0);
  if (!options.spill_path.empty()) {
    // Rows a previous process spilled and did not move are moved by the thread, from the start.
    ASSIGN_OR_RETURN(store->spill_, DecisionJournal::Open(options.spill_path));
    PgStore* raw = store.get();
    store->spiller_ = std::thread([raw] { raw->SpillLoop(); });
  }
  return store;
}

int PgStore::OpenConnections() const { return pool_->open_connections(); }

// ---------------------------------------------------------------- tenants

StatusOr<Tenant> PgStore::EnsureDefaultTenant() {
  return AdminWrite([&](PgConnection& c) -> StatusOr<Tenant> {
    auto existing = LoadTenant(c, false, kDefaultTenantId);
    if (existing.ok() || existing.status().code() != StatusCode::kNotFound) return existing;
    return InsertTenant(c, clock_, kDefaultTenantId, kDefaultTenantId);
  });
}

StatusOr<Tenant> PgStore::CreateTenant(const std::string& id, const std::string& name) {
  return AdminWrite([&](PgConnection& c) -> StatusOr<Tenant> {
    auto existing = LoadTenant(c, false, id);
    if (existing.ok()) return AlreadyExistsError("tenant " + id + " exists");
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    return InsertTenant(c, clock_, id, name);
  });
}

StatusOr<std::vector<Tenant>> PgStore::ListTenants() {
  return WithConnection([&](PgConnection& c) -> StatusOr<std::vector<Tenant>> {
    ASSIGN_OR_RETURN(PgResult r, c.Exec("SELECT id, name, tenant_token, created_at FROM tenants ORDER BY created_at, id",
                                        "listing tenants"));
    std::vector<Tenant> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(Tenant{r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.Int(i, 3)});
    return out;
  });
}

StatusOr<Tenant> PgStore::GetTenant(const std::string& tenant_id) {
  return WithConnection([&](PgConnection& c) { return LoadTenant(c, false, tenant_id); });
}

StatusOr<std::string> PgStore::RotateTenantToken(const std::string& tenant_id, const AuditEntry* audit) {
  return AdminWrite([&](PgConnection& c) -> StatusOr<std::string> {
    std::string token = NewUuid();
    PgParams p;
    p.Add(token).Add(tenant_id);
    ASSIGN_OR_RETURN(PgResult r, c.Exec("UPDATE tenants SET tenant_token = $1 WHERE id = $2", p, "rotating the tenant token"));
    if (r.affected() == 0) return NotFoundError("tenant not found");
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, tenant_id, ""));
    RETURN_IF_ERROR(Publish(c, clock_, Change::Kind::kTenant, tenant_id, tenant_id));
    return token;
  });
}

StatusOr<Tenant> PgStore::FindTenantByToken(const std::string& tenant_token) {
  if (tenant_token.empty()) return NotFoundError("tenant not found");
  return WithConnection([&](PgConnection& c) { return LoadTenant(c, true, tenant_token); });
}

// ---------------------------------------------------------------- users

StatusOr<User> PgStore::CreateUser(const User& user, const AuditEntry* audit) {
  RETURN_IF_ERROR(ValidateUser(user));
  User u = user;
  if (u.id.empty()) u.id = NewUlid(clock_);
  u.created_at = u.updated_at = clock_.NowMillis();
  return AdminWrite([&](PgConnection& c) -> StatusOr<User> {
    PgParams p;
    p.Add(u.id).Add(u.tenant_id).Add(u.email).Add(u.name).Add(RolesJson(u.roles)).Add(DumpJson(u.attributes));
    p.Add(u.enabled).Add(u.password_hash).Add(u.created_at).Add(u.updated_at);
    RETURN_IF_ERROR(UserWriteError(c.Exec("INSERT INTO users (id, tenant_id, email, name, roles, attributes, enabled, "
                                          "password_hash, created_at, updated_at) VALUES "
                                          "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                                          p, "creating a user")
                                       .status()));
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, u.tenant_id, u.id, u.email));
    return u;
  });
}

StatusOr<User> PgStore::GetUser(const std::string& tenant_id, const std::string& user_id) {
  return WithConnection([&](PgConnection& c) { return LoadUser(c, tenant_id, user_id); });
}

StatusOr<User> PgStore::FindUserByEmail(const std::string& tenant_id, const std::string& email) {
  return WithConnection([&](PgConnection& c) -> StatusOr<User> {
    PgParams p;
    p.Add(tenant_id).Add(email);
    ASSIGN_OR_RETURN(PgResult r, c.Exec(std::string("SELECT ") + kUserCols +
                                            " FROM users WHERE tenant_id = $1 AND lower(email) = lower($2)",
                                        p, "finding a user"));
    if (r.rows() == 0) return NotFoundError("user not found");
    int64_t seq;
    return ReadUser(r, 0, &seq);
  });
}

StatusOr<Page<User>> PgStore::ListUsers(const std::string& tenant_id, const ListOptions& options) {
  ASSIGN_OR_RETURN(int64_t before, DecodeCursor(options.cursor));
  const int limit = ClampLimit(options.limit);
  return WithConnection([&](PgConnection& c) -> StatusOr<Page<User>> {
    PgParams p;
    p.Add(tenant_id).Add(before).Add(limit + 1);
    ASSIGN_OR_RETURN(PgResult r, c.Exec(std::string("SELECT ") + kUserCols +
                                            " FROM users WHERE tenant_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
                                        p, "listing users"));
    return ReadPage<User>(r, limit, ReadUser);
  });
}

StatusOr<User> PgStore::UpdateUser(const std::string& tenant_id, const std::string& user_id, const UserUpdate& update,
                                   const AuditEntry* audit) {
  return AdminWrite([&](PgConnection& c) -> StatusOr<User> {
    ASSIGN_OR_RETURN(User u, LoadUser(c, tenant_id, user_id));
    ApplyUpdate(update, &u);
    u.updated_at = clock_.NowMillis();
    RETURN_IF_ERROR(ValidateUser(u));
    PgParams p;
    p.Add(u.email).Add(u.name).Add(RolesJson(u.roles)).Add(DumpJson(u.attributes)).Add(u.enabled);
    p.Add(u.password_hash).Add(u.updated_at).Add(tenant_id).Add(user_id);
    RETURN_IF_ERROR(UserWriteError(c.Exec("UPDATE users SET email = $1, name = $2, roles = $3, attributes = $4, "
                                          "enabled = $5, password_hash = $6, updated_at = $7 WHERE tenant_id = $8 "
                                          "AND id = $9",
                                          p, "updating a user")
                                       .status()));
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, u.id, u.email));
    return u;
  });
}

Status PgStore::DeleteUser(const std::string& tenant_id, const std::string& user_id, const AuditEntry* audit) {
  return AdminWrite([&](PgConnection& c) -> Status {
    ASSIGN_OR_RETURN(User u, LoadUser(c, tenant_id, user_id));
    PgParams p;
    p.Add(tenant_id).Add(user_id);
    RETURN_IF_ERROR(c.Exec("DELETE FROM users WHERE tenant_id = $1 AND id = $2", p, "deleting a user").status());
    return MaybeAudit(c, clock_, audit, tenant_id, u.id, u.email);
  });
}

StatusOr<int64_t> PgStore::CountUsers(const std::string& tenant_id) {
  return WithConnection([&](PgConnection& c) -> StatusOr<int64_t> {
    PgParams p;
    p.Add(tenant_id);
    ASSIGN_OR_RETURN(PgResult r, c.Exec("SELECT COUNT(*) FROM users WHERE tenant_id = $1", p, "counting users"));
    return r.Int(0, 0);
  });
}

StatusOr<Session> PgStore::CreateSession(const Session& session) {
  if (session.token_hash.empty()) return InvalidArgumentError("session without token hash");
  Session x = session;
  if (x.id.empty()) x.id = NewUlid(clock_);
  if (x.created_at == 0) x.created_at = clock_.NowMillis();
  return WithConnection([&](PgConnection& c) -> StatusOr<Session> {
    PgParams p;
    p.Add(x.id).Add(x.tenant_id).Add(x.user_id).Add(x.token_hash).Add(x.csrf_token).Add(x.created_at).Add(x.expires_at);
    auto r = c.Exec("INSERT INTO sessions (id, tenant_id, user_id, token_hash, csrf_token, created_at, expires_at) "
                    "SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::bigint, $7::bigint WHERE EXISTS "
                    "(SELECT 1 FROM users WHERE tenant_id = $2::text AND id = $3::text)",
                    p, "creating a session");
    if (!r.ok() && r.status().code() == StatusCode::kAlreadyExists) return AlreadyExistsError("session exists");
    if (!r.ok()) return r.status();
    if (r->affected() == 0) return NotFoundError("user not found");
    return x;
  });
}

StatusOr<Session> PgStore::FindSessionByHash(const std::string& token_hash) {
  return WithConnection([&](PgConnection& c) -> StatusOr<Session> {
    PgParams p;
    p.Add(token_hash).Add(clock_.NowMillis());
    ASSIGN_OR_RETURN(PgResult r, c.Exec(std::string("SELECT ") + kSessionCols +
                                            " FROM sessions WHERE token_hash = $1 AND (expires_at = 0 OR expires_at > $2)",
                                        p, "finding a session"));
    if (r.rows() == 0) return NotFoundError("session not found");
    return ReadSession(r, 0);
  });
}

Status PgStore::DeleteSession(const std::string& session_id) {
  return WithConnection([&](PgConnection& c) -> Status {
    PgParams p;
    p.Add(session_id);
    ASSIGN_OR_RETURN(PgResult r, c.Exec("DELETE FROM sessions WHERE id = $1", p, "deleting a session"));
    if (r.affected() == 0) return NotFoundError("session not found");
    return Status::Ok();
  });
}

StatusOr<int64_t> PgStore::DeleteExpiredSessions() {
  return WithConnection([&](PgConnection& c) -> StatusOr<int64_t> {
    PgParams p;
    p.Add(clock_.NowMillis());
    ASSIGN_OR_RETURN(PgResult r, c.Exec("DELETE FROM sessions WHERE expires_at != 0 AND expires_at <= $1", p,
                                        "deleting expired sessions"));
    return r.affected();
  });
}

StatusOr<int64_t> PgStore::DeleteSessionsOfUser(const std::string& tenant_id, const std::string& user_id) {
  return WithConnection([&](PgConnection& c) -> StatusOr<int64_t> {
    PgParams p;
    p.Add(tenant_id).Add(user_id);
    ASSIGN_OR_RETURN(PgResult r, c.Exec("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2", p,
                                        "deleting sessions of a user"));
    return r.affected();
  });
}

// ---------------------------------------------------------------- accounts

StatusOr<ServiceAccount> PgStore::CreateAccount(const ServiceAccount& account, const AuditEntry* audit) {
  return AdminWrite([&](PgConnection& c) -> StatusOr<ServiceAccount> {
    ASSIGN_OR_RETURN(ServiceAccount a, InsertAccount(c, clock_, account));
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, a.tenant_id, a.id, a.name));
    return a;
  });
}

Status PgStore::ImportAccounts(std::vector<ServiceAccount>* accounts, const std::vector<ApiTokenRecord>& tokens) {
  std::vector<ServiceAccount> original = *accounts;
  return AdminWrite([&](PgConnection& c) -> Status {
    *accounts = original;  // a retried attempt starts over
    for (ServiceAccount& a : *accounts) {
      ASSIGN_OR_RETURN(a, InsertAccount(c, clock_, a));
    }
    for (const ApiTokenRecord& t : tokens) RETURN_IF_ERROR(InsertToken(c, clock_, t).status());
    return Status::Ok();
  });
}

StatusOr<ServiceAccount> PgStore::GetAccount(const std::string& tenant_id, const std::string& account_id,
                                             bool include_deleted) {
  return WithConnection([&](PgConnection& c) { return LoadAccount(c, tenant_id, account_id, include_deleted); });
}

StatusOr<ServiceAccount> PgStore::GetAccountByName(const std::string& tenant_id, const std::string& name,
                                                   bool include_deleted) {
  return WithConnection([&](PgConnection& c) -> StatusOr<ServiceAccount> {
    PgParams p;
    p.Add(tenant_id).Add(name).Add(include_deleted);
    ASSIGN_OR_RETURN(PgResult r, c.Exec(std::string("SELECT ") + kAccountCols +
                                            " FROM service_accounts a WHERE a.tenant_id = $1 AND lower(a.name) = "
                                            "lower($2) AND ($3::boolean OR a.deleted_at = 0) ORDER BY a.deleted_at != 0, "
                                            "a.deleted_at DESC, a.seq DESC LIMIT 1",
                                        p, "finding a service account"));
    if (r.rows() == 0) return NotFoundError("service account not found");
    int64_t seq;
    return ReadAccount(r, 0, 0, &seq);
  });
}

StatusOr<Page<ServiceAccount>> PgStore::ListAccounts(const std::string& tenant_id, const ListOptions& options) {
  ASSIGN_OR_RETURN(int64_t before, DecodeCursor(options.cursor));
  const int limit = ClampLimit(options.limit);
  return WithConnection([&](PgConnection& c) -> StatusOr<Page<ServiceAccount>> {
    PgParams p;
    p.Add(tenant_id).Add(before).Add(limit + 1);
    ASSIGN_OR_RETURN(PgResult r, c.Exec(std::string("SELECT ") + kAccountCols +
                                            " FROM service_accounts a WHERE a.tenant_id = $1 AND a.deleted_at = 0 AND "
                                            "a.seq < $2 ORDER BY a.seq DESC LIMIT $3",
                                        p, "listing service accounts"));
    return ReadPage<ServiceAccount>(r, limit, [](const PgResult& res, int row, int64_t* seq) {
      return ReadAccount(res, row, 0, seq);
    });
  });
}

StatusOr<ServiceAccount> PgStore::UpdateAccount(const std::string& tenant_id, const std::string& account_id,
                                                const AccountUpdate& update, const AuditEntry* audit) {
  return AdminWrite([&](PgConnection& c) -> StatusOr<ServiceAccount> {
    ASSIGN_OR_RETURN(ServiceAccount a, LoadAccount(c, tenant_id, account_id, false));
    ApplyUpdate(update, &a);
    RETURN_IF_ERROR(ValidateAccount(a));
    a.updated_at = clock_.NowMillis();
    PgParams p;
    p.Add(a.name).Add(a.description).Add(a.enabled).Add(DumpJson(a.attributes)).Add(a.updated_at);
    p.Add(tenant_id).Add(account_id);
    RETURN_IF_ERROR(AccountNameError(c.Exec("UPDATE service_accounts SET name = $1, description = $2, enabled = $3, "
                                            "attributes = $4, updated_at = $5 WHERE tenant_id = $6 AND id = $7",
                                            p, "updating a service account")
                                         .status()));
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, a.id, a.name));
    RETURN_IF_ERROR(Publish(c, clock_, Change::Kind::kAccount, tenant_id, a.id));
    return a;
  });
}

Status PgStore::SoftDeleteAccount(const std::string& tenant_id, const std::string& account_id,
                                  const AuditEntry* audit) {
  return AdminWrite([&](PgConnection& c) -> Status {
    ASSIGN_OR_RETURN(ServiceAccount a, LoadAccount(c, tenant_id, account_id, false));
    const int64_t now = clock_.NowMillis();
    {
      PgParams p;
      p.Add(std::max<int64_t>(now, 1)).Add(now).Add(tenant_id).Add(account_id);
      RETURN_IF_ERROR(c.Exec("UPDATE service_accounts SET deleted_at = $1, updated_at = $2 WHERE tenant_id = $3 AND "
                             "id = $4",
                             p, "deleting a service account")
                          .status());
    }
    PgParams p;
    p.Add(account_id);
    RETURN_IF_ERROR(c.Exec("DELETE FROM api_tokens WHERE account_id = $1", p, "deleting the tokens of a service account")
                        .status());
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, a.id, a.name));
    return Publish(c, clock_, Change::Kind::kAccount, tenant_id, a.id);
  });
}

StatusOr<PolicyVersion> PgStore::SetPolicy(const std::string& tenant_id, const std::string& account_id,
                                           const std::string& policy_yaml, const std::string& actor_type,
                                           const std::string& actor_id, std::optional<int64_t> expected_version,
                                           const AuditEntry* audit) {
  return AdminWrite([&](PgConnection& c) -> StatusOr<PolicyVersion> {
    ASSIGN_OR_RETURN(ServiceAccount a, LoadAccount(c, tenant_id, account_id, false));
    if (expected_version && *expected_version != a.policy_version) {
      return FailedPreconditionError("the policy is at version " + std::to_string(a.policy_version) + ", not " +
                                     std::to_string(*expected_version));
    }
    PolicyVersion v{tenant_id, account_id, a.policy_version + 1, policy_yaml, clock_.NowMillis(), actor_type, actor_id};
    {
      PgParams p;
      p.Add(v.tenant_id).Add(v.account_id).Add(v.version).Add(v.policy_yaml).Add(v.created_at).Add(v.actor_type);
      p.Add(v.actor_id);
      RETURN_IF_ERROR(c.Exec("INSERT INTO service_account_policy_versions (tenant_id, account_id, version, "
                             "policy_yaml, created_at, actor_type, actor_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                             p, "storing a policy version")
                          .status());
    }
    PgParams p;
    p.Add(v.policy_yaml).Add(v.version).Add(v.created_at).Add(tenant_id).Add(account_id);
    RETURN_IF_ERROR(c.Exec("UPDATE service_accounts SET policy_yaml = $1, policy_version = $2, updated_at = $3 WHERE "
                           "tenant_id = $4 AND id = $5",
                           p, "setting the current policy")
                        .status());
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, a.id, a.name));
    RETURN_IF_ERROR(Publish(c, clock_, Change::Kind::kAccount, tenant_id, a.id));
    return v;
  });
}

StatusOr<std::vector<PolicyVersion>> PgStore::ListPolicyVersions(const std::string& tenant_id,
                                                                 const std::string& account_id) {
  return WithConnection([&](PgConnection& c) -> StatusOr<std::vector<PolicyVersion>> {
    RETURN_IF_ERROR(LoadAccount(c, tenant_id, account_id, true).status());
    PgParams p;
    p.Add(tenant_id).Add(account_id);
    ASSIGN_OR_RETURN(PgResult r, c.Exec("SELECT tenant_id, account_id, version, policy_yaml, created_at, actor_type, "
                                        "actor_id FROM service_account_policy_versions WHERE tenant_id = $1 AND "
                                        "account_id = $2 ORDER BY version DESC",
                                        p, "listing policy versions"));
    std::vector<PolicyVersion> out;
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(PolicyVersion{r.Text(i, 0), r.Text(i, 1), r.Int(i, 2), r.Text(i, 3), r.Int(i, 4), r.Text(i, 5),
                                  r.Text(i, 6)});
    }
    return out;
  });
}

// ---------------------------------------------------------------- tokens

Status PgStore::CreateToken(const ApiTokenRecord& token, const AuditEntry* audit) {
  return AdminWrite([&](PgConnection& c) -> Status {
    ASSIGN_OR_RETURN(ApiTokenRecord t, InsertToken(c, clock_, token));
    return MaybeAudit(c, clock_, audit, t.tenant_id, t.id, t.name);
  });
}

StatusOr<std::vector<ApiTokenRecord>> PgStore::ListTokens(const std::string& tenant_id, const std::string& account_id) {
  return WithConnection([&](PgConnection& c) -> StatusOr<std::vector<ApiTokenRecord>> {
    RETURN_IF_ERROR(LoadAccount(c, tenant_id, account_id, false).status());
    PgParams p;
    p.Add(tenant_id).Add(account_id);
    ASSIGN_OR_RETURN(PgResult r, c.Exec(std::string("SELECT ") + kTokenCols +
                                            " FROM api_tokens t WHERE t.tenant_id = $1 AND t.account_id = $2 ORDER BY "
                                            "t.created_at, t.seq",
                                        p, "listing tokens"));
    std::vector<ApiTokenRecord> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(ReadToken(r, i, 0));
    return out;
  });
}

Status PgStore::DeleteToken(const std::string& tenant_id, const std::string& account_id, const std::string& token_id,
                            const AuditEntry* audit) {
  return AdminWrite([&](PgConnection& c) -> Status {
    PgParams p;
    p.Add(tenant_id).Add(account_id).Add(token_id);
    ASSIGN_OR_RETURN(PgResult r, c.Exec("DELETE FROM api_tokens WHERE tenant_id = $1 AND account_id = $2 AND id = $3 "
                                        "RETURNING name",
                                        p, "deleting a token"));
    if (r.rows() == 0) return NotFoundError("token not found");
    RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, tenant_id, token_id, r.Text(0, 0)));
    return Publish(c, clock_, Change::Kind::kToken, tenant_id, token_id);
  });
}

StatusOr<TokenLookup> PgStore::LookupToken(const std::string& token_id) {
  return WithConnection([&](PgConnection& c) -> StatusOr<TokenLookup> {
    PgParams p;
    p.Add(token_id);
    ASSIGN_OR_RETURN(PgResult r, c.Exec(std::string("SELECT ") + kTokenCols + ", " + kAccountColsNoStats +
                                            " FROM api_tokens t JOIN service_accounts a ON a.id = t.account_id WHERE "
                                            "t.id = $1 AND a.deleted_at = 0",
                                        p, "looking up a token"));
    if (r.rows() == 0) return NotFoundError("token not found");
    TokenLookup out;
    out.token = ReadToken(r, 0, 0);
    int64_t seq;
    ASSIGN_OR_RETURN(out.account, ReadAccount(r, 0, kTokenColCount, &seq));
    return out;
  });
}

Status PgStore::TouchTokensLastUsed(const std::vector<std::pair<std::string, int64_t>>& uses) {
  if (uses.empty()) return Status::Ok();
  std::map<std::string, int64_t> latest;  // one row per id (UPDATE ... FROM takes one match)
  for (const auto& [id, millis] : uses) latest[id] = std::max(latest[id], millis);
  TextArray ids, times;
  for (const auto& [id, millis] : latest) {
    ids.Add(std::string_view(id));
    times.Add(millis);
  }
  return WithConnection([&](PgConnection& c) -> Status {
    PgParams p;
    p.Add(ids.Finish()).Add(times.Finish());
    return c.Exec("UPDATE api_tokens t SET last_used_at = u.ms FROM unnest($1::text[], $2::bigint[]) AS u(id, ms) "
                  "WHERE t.id = u.id AND t.last_used_at < u.ms",
                  p, "updating token last use")
        .status();
  });
}

StatusOr<int64_t> PgStore::CountTokens(const std::string& tenant_id) {
  return WithConnection([&](PgConnection& c) -> StatusOr<int64_t> {
    PgParams p;
    p.Add(tenant_id);
    ASSIGN_OR_RETURN(PgResult r, c.Exec("SELECT COUNT(*) FROM api_tokens t JOIN service_accounts a ON a.id = "
                                        "t.account_id WHERE t.tenant_id = $1 AND a.deleted_at = 0",
                                        p, "counting tokens"));
    return r.Int(0, 0);
  });
}

// ---------------------------------------------------------------- audit

Status PgStore::Append(AuditEntry* entry) {
  return AdminWrite([&](PgConnection& c) -> Status { return InsertAudit(c, clock_, entry); });
}

StatusOr<Page<AuditEntry>> PgStore::List(const AuditQuery& query) {
  ASSIGN_OR_RETURN(int64_t before, DecodeCursor(query.cursor));
  const int limit = ClampLimit(query.limit);
  Sql sql(std::string("SELECT ") + kAuditCols + " FROM audit_log WHERE");
  sql.Param(" tenant_id = ", query.tenant_id).Param(" AND seq < ", before);
  if (!query.target_id.empty()) sql.Param(" AND target_id = ", query.target_id);
  if (!query.target_type.empty()) sql.Param(" AND target_type = ", query.target_type);
  sql.Param(" ORDER BY seq DESC LIMIT ", limit + 1);
  return WithConnection([&](PgConnection& c) -> StatusOr<Page<AuditEntry>> {
    ASSIGN_OR_RETURN(PgResult r, c.Exec(sql.text(), sql.params(), "listing the audit log"));
    return ReadPage<AuditEntry>(r, limit, [](const PgResult& res, int row, int64_t* seq) -> StatusOr<AuditEntry> {
      ASSIGN_OR_RETURN(AuditEntry e, ReadAudit(res, row));
      *seq = e.seq;
      return e;
    });
  });
}

// ---------------------------------------------------------------- decision log

namespace {

int64_t DayOf(int64_t time) { return time >= 0 ? time / kDayMs : -((-time + kDayMs - 1) / kDayMs); }

constexpr char kPartitionPrefix[] = "decision_log_day";  // + days since 1970
std::string PartitionName(int64_t day) { return kPartitionPrefix + std::to_string(day); }

}  // namespace

Status PgStore::EnsurePartitions(PgConnection& c, const std::set<int64_t>& days) {
  for (int64_t day : days) {
    if (day < kFirstDay || day >= kLastDay) continue;  // the default partition
    {
      std::lock_guard<std::mutex> lock(partitions_mu_);
      if (partitions_.count(day)) continue;
    }
    // DDL takes no parameters; the name and bounds are integers computed here. Another
    // replica may create the same partition at the same moment: IF NOT EXISTS, and a
    // duplicate-object error means it exists.
    const std::string ddl = "CREATE TABLE IF NOT EXISTS " + PartitionName(day) + " PARTITION OF decision_log FOR VALUES FROM (" +
                            std::to_string(day * kDayMs) + ") TO (" + std::to_string((day + 1) * kDayMs) + ")";
    Status st = c.Simple(ddl, "creating a decision-log partition");
    if (!st.ok() && st.code() != StatusCode::kAlreadyExists) {
      if (st.message().find("already exists") == std::string::npos) return st;
    }
    std::lock_guard<std::mutex> lock(partitions_mu_);
    partitions_.insert(day);
  }
  return Status::Ok();
}

Status PgStore::AppendDecisions(std::vector<DecisionRow>* rows) {
  if (rows->empty()) return Status::Ok();
  if (!spill_) return InsertDecisions(rows);
  std::unique_lock<std::mutex> lock(spill_mu_);
  // While spilled rows wait, new ones queue behind them (the history keeps its order).
  if (spill_->end() == DecisionJournal::kHeaderBytes) {
    lock.unlock();
    Status st = InsertDecisions(rows);
    if (st.ok() || st.code() != StatusCode::kUnavailable) return st;
    lock.lock();
  }
  const int64_t now = clock_.NowMillis();
  for (DecisionRow& d : *rows) {
    if (d.id.empty()) d.id = NewUlid(clock_);
    if (d.time == 0) d.time = now;
    d.seq = 0;  // given when the row reaches PostgreSQL
  }
  RETURN_IF_ERROR(spill_->Append(*rows));
  lock.unlock();
  spill_cv_.notify_one();
  return Status::Ok();
}

int64_t PgStore::DecisionBacklogBytes() const {
  return spill_ ? std::max<int64_t>(0, spill_->end() - DecisionJournal::kHeaderBytes) : 0;
}

void PgStore::SpillLoop() {
  pthread_setname_np(pthread_self(), "warden-spill");
  std::vector<DecisionRow> rows;
  int64_t offset = DecisionJournal::kHeaderBytes;
  std::chrono::milliseconds backoff{100};
  std::unique_lock<std::mutex> lock(spill_mu_);
  while (!spill_stop_) {
    if (spill_->end() == offset) {
      if (offset != DecisionJournal::kHeaderBytes) {  // all moved: start the file over
        if (spill_->Reset().ok()) offset = DecisionJournal::kHeaderBytes;
      }
      spill_cv_.wait_for(lock, std::chrono::milliseconds(200));
      continue;
    }
    lock.unlock();
    auto next = spill_->Read(offset, 1000, &rows);
    Status st = next.ok() ? InsertDecisions(&rows) : next.status();
    lock.lock();
    if (st.ok()) {
      offset = *next;
      backoff = std::chrono::milliseconds(100);
    } else {
      spill_cv_.wait_for(lock, backoff, [this] { return spill_stop_; });
      backoff = std::min(std::chrono::milliseconds(2000), backoff * 2);
    }
  }
}

Status PgStore::InsertDecisions(std::vector<DecisionRow>* rows) {
  if (rows->empty()) return Status::Ok();
  const int64_t now = clock_.NowMillis();
  std::set<int64_t> days;
  std::vector<TextArray> text(std::size(kDecisionText));
  TextArray times, allowed, latencies;
  for (DecisionRow& d : *rows) {
    if (d.id.empty()) d.id = NewUlid(clock_);
    if (d.time == 0) d.time = now;
    days.insert(DayOf(d.time));
    for (size_t i = 0; i < text.size(); ++i) text[i].Add(std::string_view(d.*kDecisionText[i]));
    times.Add(d.time);
    allowed.Add(d.allowed);
    latencies.Add(d.latency_us);
  }
  PgParams p;
  p.Add(static_cast<int64_t>(rows->size()));
  for (const TextArray& a : text) p.Add(a.Finish());
  p.Add(times.Finish()).Add(allowed.Finish()).Add(latencies.Finish());
  // One statement, one commit: the seq row (locked until commit: seq order is commit order
  // across replicas), the rows, and the per-principal counts. A row already stored (same time
  // and id: a batch sent again after its answer was lost) is skipped and not counted again.
  static const std::string kInsert = [] {
    // $1 the row count, then one array per column: the text columns, time, allowed, latency_us.
    std::string arrays;
    int n = 2;
    for (size_t i = 0; i < std::size(kDecisionText); ++i) arrays += "$" + std::to_string(n++) + "::text[], ";
    arrays += "$" + std::to_string(n++) + "::bigint[], ";
    arrays += "$" + std::to_string(n++) + "::boolean[], ";
    arrays += "$" + std::to_string(n++) + "::bigint[]";
    const std::string cols = std::string(kDecisionTextCols) + ", time, allowed, latency_us";
    std::string u_cols = "u." + cols;  // the same, each of u
    for (size_t at = u_cols.find(", "); at != std::string::npos; at = u_cols.find(", ", at + 2)) u_cols.insert(at + 2, "u.");
    return "WITH s AS (UPDATE decision_seq SET last = last + $1 WHERE id = 1 RETURNING last - $1 AS base), "
           "ins AS (INSERT INTO decision_log (seq, " + cols + ") SELECT s.base + u.n, " + u_cols + " FROM s, unnest(" + arrays +
           ") WITH ORDINALITY AS u(" + cols + ", n) ON CONFLICT (time, id) DO NOTHING RETURNING tenant_id, principal_id), "
           "cnt AS (INSERT INTO decision_counts (tenant_id, principal_id, row_count) SELECT tenant_id, principal_id, "
           "COUNT(*) FROM ins GROUP BY tenant_id, principal_id ON CONFLICT (tenant_id, principal_id) DO UPDATE SET "
           "row_count = decision_counts.row_count + excluded.row_count) "
           "SELECT base FROM s";
  }();
  // Not retried: a lost connection may have lost the answer of a commit that happened.
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  RETURN_IF_ERROR(EnsurePartitions(**lease, days));
  ASSIGN_OR_RETURN(PgResult r, (*lease)->Exec(kInsert, p, "storing decision rows"));
  if (r.rows() != 1) return InternalError("the decision_seq row is missing");
  const int64_t base = r.Int(0, 0);
  for (size_t i = 0; i < rows->size(); ++i) (*rows)[i].seq = base + static_cast<int64_t>(i) + 1;
  return Status::Ok();
}

StatusOr<Page<DecisionRow>> PgStore::Query(const DecisionQuery& q) {
  if (q.tenant_id.empty()) return InvalidArgumentError("tenant_id is required", "tenant_id");
  ASSIGN_OR_RETURN(int64_t before, DecodeCursor(q.cursor));
  const int limit = ClampLimit(q.limit);
  Sql sql("SELECT " + kDecisionCols + " FROM decision_log WHERE");
  sql.Param(" tenant_id = ", q.tenant_id);
  if (!q.principal_id.empty()) sql.Param(" AND principal_id = ", q.principal_id);
  sql.Param(" AND seq < ", before);
  if (q.allowed) sql.Param(" AND allowed = ", *q.allowed);
  if (!q.model.empty()) sql.Param(" AND model = ", q.model);
  if (!q.action.empty()) sql.Param(" AND action = ", q.action);
  if (q.since > 0) sql.Param(" AND time >= ", q.since);
  if (q.until > 0) sql.Param(" AND time < ", q.until);
  sql.Param(" ORDER BY seq DESC LIMIT ", limit + 1);
  return WithConnection([&](PgConnection& c) -> StatusOr<Page<DecisionRow>> {
    ASSIGN_OR_RETURN(PgResult r, c.Exec(sql.text(), sql.params(), "querying the decision log"));
    return ReadPage<DecisionRow>(r, limit, [](const PgResult& res, int row, int64_t* seq) -> StatusOr<DecisionRow> {
      DecisionRow d = ReadDecision(res, row);
      *seq = d.seq;
      return d;
    });
  });
}

namespace {

// Subtracts the rows a DELETE ... RETURNING tenant_id, principal_id removed from decision_counts.
Status SubtractCounts(PgConnection& c, const PgResult& deleted, int tenant_col, int principal_col, int count_col = -1) {
  if (deleted.rows() == 0) return Status::Ok();
  std::map<std::pair<std::string, std::string>, int64_t> gone;
  for (int i = 0; i < deleted.rows(); ++i) {
    gone[{deleted.Text(i, tenant_col), deleted.Text(i, principal_col)}] += count_col < 0 ? 1 : deleted.Int(i, count_col);
  }
  TextArray tenants, principals, counts;
  for (const auto& [key, n] : gone) {
    tenants.Add(std::string_view(key.first));
    principals.Add(std::string_view(key.second));
    counts.Add(n);
  }
  PgParams p;
  p.Add(tenants.Finish()).Add(principals.Finish()).Add(counts.Finish());
  return c.Exec("UPDATE decision_counts d SET row_count = d.row_count - u.n FROM unnest($1::text[], $2::text[], "
                "$3::bigint[]) AS u(tenant_id, principal_id, n) WHERE d.tenant_id = u.tenant_id AND d.principal_id = "
                "u.principal_id",
                p, "updating decision counts")
      .status();
}

}  // namespace

StatusOr<int64_t> PgStore::Prune(const Retention& retention, int batch_size) {
  if (batch_size <= 0) return InvalidArgumentError("batch_size must be positive", "batch_size");
  return WithConnection([&](PgConnection& c) -> StatusOr<int64_t> {
    PgTransaction tx(&c);
    RETURN_IF_ERROR(tx.status());
    ASSIGN_OR_RETURN(int64_t deleted, PruneLocked(c, retention, batch_size));
    RETURN_IF_ERROR(tx.Commit());
    return deleted;
  });
}

StatusOr<int64_t> PgStore::PruneLocked(PgConnection& c, const Retention& retention, int64_t budget) {
  // Appends wait on this row lock while pruning runs: the counts stay exact.
  RETURN_IF_ERROR(c.Exec("SELECT last FROM decision_seq WHERE id = 1 FOR UPDATE", "locking the decision log").status());
  int64_t deleted = 0;
  if (retention.max_age_ms > 0) {
    const int64_t cutoff = clock_.NowMillis() - retention.max_age_ms;
    ASSIGN_OR_RETURN(PgResult parts, c.Exec("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                            "WHERE i.inhparent = 'decision_log'::regclass AND c.relname LIKE "
                                            "'decision\\_log\\_day%' ORDER BY c.relname",
                                            "listing decision-log partitions"));
    for (int i = 0; i < parts.rows(); ++i) {
      const std::string name = parts.Text(i, 0);
      int64_t day = 0;
      const char* digits = name.c_str() + std::strlen(kPartitionPrefix);
      const char* end = name.c_str() + name.size();
      auto [ptr, ec] = std::from_chars(digits, end, day);
      if (!name.starts_with(kPartitionPrefix) || ec != std::errc() || ptr != end) continue;  // not a day's
      if ((day + 1) * kDayMs > cutoff) continue;
      // A whole day older than the cutoff: one DROP instead of its rows' deletes. The table
      // name is generated by EnsurePartitions, never input.
      ASSIGN_OR_RETURN(PgResult counts, c.Exec("SELECT tenant_id, principal_id, COUNT(*) FROM " + name +
                                                   " GROUP BY tenant_id, principal_id",
                                               "counting a partition"));
      RETURN_IF_ERROR(SubtractCounts(c, counts, 0, 1, 2));
      for (int k = 0; k < counts.rows(); ++k) deleted += counts.Int(k, 2);
      RETURN_IF_ERROR(c.Simple("DROP TABLE " + name, "dropping a decision-log partition"));
      std::lock_guard<std::mutex> lock(partitions_mu_);
      partitions_.erase(day);
    }
    if (deleted < budget) {
      PgParams p;
      p.Add(cutoff).Add(budget - deleted);
      ASSIGN_OR_RETURN(PgResult gone, c.Exec("DELETE FROM decision_log WHERE (time, seq) IN (SELECT time, seq FROM "
                                             "decision_log WHERE time < $1 ORDER BY seq LIMIT $2) RETURNING tenant_id, "
                                             "principal_id",
                                             p, "pruning the decision log"));
      RETURN_IF_ERROR(SubtractCounts(c, gone, 0, 1));
      deleted += gone.rows();
    }
  }
  if (deleted < budget && (retention.max_rows_per_principal > 0 || retention.max_unauthenticated_rows > 0)) {
    PgParams p;
    p.Add(retention.max_rows_per_principal).Add(retention.max_unauthenticated_rows);
    ASSIGN_OR_RETURN(PgResult over, c.Exec("SELECT tenant_id, principal_id, row_count - CASE WHEN principal_id = '' "
                                           "THEN $2::bigint ELSE $1::bigint END FROM decision_counts WHERE "
                                           "(principal_id <> '' AND $1::bigint > 0 AND row_count > $1::bigint) OR "
                                           "(principal_id = '' AND $2::bigint > 0 AND row_count > $2::bigint) "
                                           "ORDER BY 3 DESC LIMIT 100",
                                           p, "finding principals over their budget"));
    for (int i = 0; i < over.rows() && deleted < budget; ++i) {
      PgParams d;
      d.Add(over.Text(i, 0)).Add(over.Text(i, 1)).Add(std::min(over.Int(i, 2), budget - deleted));
      ASSIGN_OR_RETURN(PgResult gone, c.Exec("DELETE FROM decision_log WHERE (time, seq) IN (SELECT time, seq FROM "
                                             "decision_log WHERE tenant_id = $1 AND principal_id = $2 ORDER BY seq "
                                             "LIMIT $3) RETURNING tenant_id, principal_id",
                                             d, "pruning a principal's decisions"));
      RETURN_IF_ERROR(SubtractCounts(c, gone, 0, 1));
      deleted += gone.rows();
    }
  }
  // Change rows old enough that a listener down that long starts over anyway.
  PgParams p;
  p.Add(clock_.NowMillis() - options_.changes_keep_ms);
  RETURN_IF_ERROR(c.Exec("DELETE FROM changes WHERE time < $1 AND seq < (SELECT MAX(seq) FROM changes)", p,
                         "pruning the change feed")
                      .status());
  return deleted;
}

StatusOr<int64_t> PgStore::CountDecisions(const std::string& tenant_id, const std::string& principal_id) {
  return WithConnection([&](PgConnection& c) -> StatusOr<int64_t> {
    PgParams p;
    p.Add(tenant_id);
    if (!principal_id.empty()) p.Add(principal_id);
    ASSIGN_OR_RETURN(PgResult r, c.Exec(principal_id.empty()
                                            ? "SELECT COALESCE(SUM(row_count), 0) FROM decision_counts WHERE tenant_id = $1"
                                            : "SELECT COALESCE(SUM(row_count), 0) FROM decision_counts WHERE tenant_id = $1 "
                                              "AND principal_id = $2",
                                        p, "counting decisions"));
    return r.Int(0, 0);
  });
}

// ---------------------------------------------------------------- directory

namespace {

constexpr char kDirectoryCols[] = "tenant_id, kind, type, id, roles, properties, updated_at";

StatusOr<DirectoryEntry> ReadDirectoryEntry(const PgResult& r, int row) {
  DirectoryEntry e;
  e.tenant_id = r.Text(row, 0);
  e.kind = r.Text(row, 1) == "subject" ? DirectoryKind::kSubject : DirectoryKind::kResource;
  e.type = r.Text(row, 2);
  e.id = r.Text(row, 3);
  ASSIGN_OR_RETURN(e.roles, ParseRoles(r.Text(row, 4)));
  ASSIGN_OR_RETURN(e.properties, ParseJsonColumn(r.Text(row, 5), "properties"));
  e.updated_at = r.Int(row, 6);
  return e;
}

}  // namespace

Status PgStore::PutDirectoryEntries(const std::vector<DirectoryEntry>& entries, const AuditEntry* audit) {
  for (size_t i = 0; i < entries.size(); ++i) RETURN_IF_ERROR(ValidateDirectoryEntry(entries[i], i));
  return AdminWrite([&](PgConnection& c) -> Status {
    const int64_t now = clock_.NowMillis();
    for (const DirectoryEntry& e : entries) {
      PgParams p;
      p.Add(e.tenant_id).Add(DirectoryKindName(e.kind)).Add(e.type).Add(e.id);
      p.Add(RolesJson(e.roles)).Add(DumpJson(e.properties)).Add(now);
      RETURN_IF_ERROR(c.Exec(std::string("INSERT INTO directory_entries (") + kDirectoryCols +
                                 ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, kind, type, id) DO "
                                 "UPDATE SET roles = excluded.roles, properties = excluded.properties, "
                                 "updated_at = excluded.updated_at",
                             p, "writing a directory entry")
                          .status());
    }
    if (audit != nullptr && !entries.empty()) {
      RETURN_IF_ERROR(MaybeAudit(c, clock_, audit, entries.front().tenant_id,
                                 entries.size() == 1 ? entries.front().type + "/" + entries.front().id : "", ""));
    }
    return Status::Ok();
  });
}

StatusOr<DirectoryEntry> PgStore::GetDirectoryEntry(const std::string& tenant_id, DirectoryKind kind,
                                                    const std::string& type, const std::string& id) {
  return WithConnection([&](PgConnection& c) -> StatusOr<DirectoryEntry> {
    PgParams p;
    p.Add(tenant_id).Add(DirectoryKindName(kind)).Add(type).Add(id);
    ASSIGN_OR_RETURN(PgResult r, c.Exec(std::string("SELECT ") + kDirectoryCols +
                                            " FROM directory_entries WHERE tenant_id = $1 AND kind = $2 AND "
                                            "type = $3 AND id = $4",
                                        p, "reading a directory entry"));
    if (r.rows() == 0) return NotFoundError("no such directory entry");
    return ReadDirectoryEntry(r, 0);
  });
}

StatusOr<std::vector<DirectoryEntry>> PgStore::ListDirectoryEntries(const DirectoryQuery& query) {
  return WithConnection([&](PgConnection& c) -> StatusOr<std::vector<DirectoryEntry>> {
    PgParams p;
    p.Add(query.tenant_id).Add(DirectoryKindName(query.kind)).Add(query.type).Add(query.after_id);
    p.Add(ClampLimit(query.limit));
    ASSIGN_OR_RETURN(PgResult r, c.Exec(std::string("SELECT ") + kDirectoryCols +
                                            " FROM directory_entries WHERE tenant_id = $1 AND kind = $2 AND "
                                            "type = $3 AND id > $4 ORDER BY id LIMIT $5",
                                        p, "listing directory entries"));
    std::vector<DirectoryEntry> out;
    for (int i = 0; i < r.rows(); ++i) {
      ASSIGN_OR_RETURN(DirectoryEntry e, ReadDirectoryEntry(r, i));
      out.push_back(std::move(e));
    }
    return out;
  });
}

Status PgStore::DeleteDirectoryEntry(const std::string& tenant_id, DirectoryKind kind, const std::string& type,
                                     const std::string& id, const AuditEntry* audit) {
  return AdminWrite([&](PgConnection& c) -> Status {
    PgParams p;
    p.Add(tenant_id).Add(DirectoryKindName(kind)).Add(type).Add(id);
    ASSIGN_OR_RETURN(PgResult r, c.Exec("DELETE FROM directory_entries WHERE tenant_id = $1 AND kind = $2 AND "
                                        "type = $3 AND id = $4 RETURNING id",
                                        p, "deleting a directory entry"));
    if (r.rows() == 0) return NotFoundError("no such directory entry");
    return MaybeAudit(c, clock_, audit, tenant_id, type + "/" + id, "");
  });
}


// ---------------------------------------------------------------- health

Status PgStore::Ping() {
  return WithConnection([&](PgConnection& c) -> Status {
    PgParams p;
    p.Add(clock_.NowMillis());
    return c.Exec("INSERT INTO health (id, pinged_at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET pinged_at = "
                  "excluded.pinged_at",
                  p, "writing the health row")
        .status();
  });
}

// ---------------------------------------------------------------- change feed

void PgStore::Subscribe(std::function<void(const Change&)> listener) {
  if (!listener) {
    StopListening();
    return;
  }
  std::lock_guard<std::mutex> lock(feed_mu_);
  if (listen_.joinable()) return;
  stop_ = false;
  listener_ = std::move(listener);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  listen_ = std::thread([this] { ListenLoop(); });
}

void PgStore::ListenLoop() {
  pthread_setname_np(pthread_self(), "warden-changes");
  using std::chrono::milliseconds;
  using std::chrono::steady_clock;
  std::unique_ptr<PgConnection> conn;
  milliseconds backoff{0};
  auto last_poll = steady_clock::now();
  // Waits until `deadline`, a notification, or Stop; false when stopping.
  auto wait = [&](int socket, milliseconds timeout) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {socket, POLLIN, 0}};
    (void)::poll(fds, socket >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
    return !stop_.load();
  };
  while (!stop_.load()) {
    if (!conn) {
      auto opened = PgConnection::Connect(url_);
      if (opened.ok()) {
        Status listening = (*opened)->Simple(std::string("LISTEN ") + kChannel, "listening for changes");
        if (listening.ok()) conn = std::move(opened).value();
      }
      if (!conn) {
        backoff = std::min(milliseconds(1000), std::max(milliseconds(50), backoff * 2));
        if (!wait(-1, backoff)) break;
        continue;
      }
      backoff = milliseconds(0);
    }
    // Poll now: after (re)connecting, on a notification, or when the interval passed.
    bool lost = false;
    {
      PgParams p;
      p.Add(changes_seen_);
      auto r = conn->Exec("SELECT seq, kind, tenant_id, target_id FROM changes WHERE seq > $1 ORDER BY seq LIMIT 1000",
                          p, "reading the change feed");
      if (!r.ok()) {
        lost = true;
      } else {
        const auto now = steady_clock::now();
        if (now - last_poll > milliseconds(options_.changes_keep_ms - 60'000)) {
          listener_(Change{});  // down for longer than changes are kept: some may be gone
        }
        last_poll = now;
        for (int i = 0; i < r->rows(); ++i) {
          changes_seen_ = r->Int(i, 0);
          listener_(Change{KindOf(r->View(i, 1)), r->Text(i, 2), r->Text(i, 3)});
        }
        if (r->rows() == 1000) continue;  // more waiting
      }
    }
    if (lost) {
      conn.reset();
      continue;
    }
    if (!wait(PQsocket(conn->raw()), milliseconds(options_.poll_interval_ms))) break;
    if (PQconsumeInput(conn->raw()) == 0) {
      conn.reset();
      continue;
    }
    while (PGnotify* n = PQnotifies(conn->raw())) PQfreemem(n);  // the poll that follows reads them
  }
}

}  // namespace warden::store
