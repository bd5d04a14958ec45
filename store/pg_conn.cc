#include "store/pg_conn.h"

#include <poll.h>

#include <charconv>
#include <cstring>
#include <thread>

namespace warden::store {

PgParams& PgParams::Add(std::string_view text) {
  values_.emplace_back(text);
  formats_.push_back(0);
  return *this;
}

PgParams& PgParams::Add(int64_t value) { return Add(std::string_view(std::to_string(value))); }

PgParams& PgParams::Add(bool value) { return Add(std::string_view(value ? "t" : "f")); }

PgParams& PgParams::AddBytes(std::string_view bytes) {
  values_.emplace_back(bytes);
  formats_.push_back(1);
  return *this;
}

PgResult& PgResult::operator=(PgResult&& o) noexcept {
  if (this != &o) {
    if (r_) PQclear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}

PgResult::~PgResult() {
  if (r_) PQclear(r_);
}

int64_t PgResult::affected() const {
  const char* n = r_ ? PQcmdTuples(r_) : "";
  int64_t v = 0;
  std::from_chars(n, n + std::strlen(n), v);
  return v;
}

std::string PgResult::Text(int row, int col) const { return std::string(View(row, col)); }

std::string_view PgResult::View(int row, int col) const {
  return std::string_view(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}

int64_t PgResult::Int(int row, int col) const {
  std::string_view v = View(row, col);
  int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

bool PgResult::Bool(int row, int col) const {
  std::string_view v = View(row, col);
  return !v.empty() && (v[0] == 't' || v[0] == '1');
}

std::string PgResult::Bytes(int row, int col) const {
  size_t n = 0;
  unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, col)), &n);
  if (raw == nullptr) return {};
  std::string out(reinterpret_cast<char*>(raw), n);
  PQfreemem(raw);
  return out;
}

Status PgError(const PGresult* result, PGconn* conn, std::string_view context) {
  std::string message = std::string(context) + ": ";
  const char* primary = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  message += primary ? primary : (conn ? PQerrorMessage(conn) : "no result");
  while (!message.empty() && message.back() == '\n') message.pop_back();
  if (conn != nullptr && PQstatus(conn) == CONNECTION_BAD) {
    return UnavailableError(std::string(context) + ": lost the connection to PostgreSQL");
  }
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string_view code = state ? state : "";
  if (code == "23505") return AlreadyExistsError(message);
  if (code == "23503") return NotFoundError(message);
  if (code == "22021" || code == "22P05" || code == "22001") return InvalidArgumentError(message);
  // Class 08 connection exceptions, 57 operator intervention (shutdown, terminated), 53
  // insufficient resources, 40 serialization failure / deadlock, 55P03 lock not available.
  if (code.size() == 5 && (code.starts_with("08") || code.starts_with("57") || code.starts_with("53") ||
                           code.starts_with("40") || code == "55P03")) {
    return UnavailableError(message);
  }
  if (code.empty()) return UnavailableError(message);  // no server answer at all
  return InternalError(message + " (SQLSTATE " + std::string(code) + ")");
}

StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& url) {
  // Defaults the URL may override (a replica names itself with application_name=...).
  std::vector<const char*> keys = {"dbname"}, values = {url.c_str()};
  if (url.find("connect_timeout") == std::string::npos) keys.push_back("connect_timeout"), values.push_back("3");
  if (url.find("application_name") == std::string::npos) keys.push_back("application_name"), values.push_back("warden");
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) return UnavailableError("cannot allocate a PostgreSQL connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    PQfinish(conn);
    return UnavailableError("cannot connect to PostgreSQL: " + message);
  }
  std::unique_ptr<PgConnection> c(new PgConnection(conn));
  // UTF-8 and UTC keep the session independent of the server's defaults. Generic plans: the
  // decision log has a partition a day, and planning the LOGS page's statement anew for
  // every execution (PostgreSQL's first five) costs more than running it; its cursor and
  // time bounds prune partitions at run time.
  RETURN_IF_ERROR(c->Simple("SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'; SET client_min_messages = 'warning'; "
                            "SET plan_cache_mode = 'force_generic_plan'",
                            "configuring the connection"));
  return c;
}

PgConnection::~PgConnection() { PQfinish(conn_); }

StatusOr<PgResult> PgConnection::Exec(const std::string& sql, const PgParams& params, std::string_view context) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "w" + std::to_string(prepared_.size() + 1);
    PgResult prepared(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr));
    if (PQresultStatus(prepared.raw()) != PGRES_COMMAND_OK) {
      return PgError(prepared.raw(), conn_, context);
    }
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  const int n = params.size();
  std::vector<const char*> values(n);
  std::vector<int> lengths(n);
  for (int i = 0; i < n; ++i) {
    values[i] = params.values_[i].data();
    lengths[i] = static_cast<int>(params.values_[i].size());
  }
  PgResult result(PQexecPrepared(conn_, it->second.c_str(), n, values.data(), lengths.data(),
                                 params.formats_.data(), /*resultFormat=*/0));
  const ExecStatusType st = PQresultStatus(result.raw());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    if (broken()) prepared_.clear();
    return PgError(result.raw(), conn_, context);
  }
  return result;
}

bool PgConnection::Alive() {
  if (broken()) return false;
  pollfd fd{PQsocket(conn_), POLLIN, 0};
  if (::poll(&fd, 1, 0) > 0) {
    if (PQconsumeInput(conn_) == 0) return false;
    while (PGnotify* n = PQnotifies(conn_)) PQfreemem(n);
  }
  return !broken();
}

Status PgConnection::Simple(const std::string& sql, std::string_view context) {
  PgResult result(PQexec(conn_, sql.c_str()));
  const ExecStatusType st = PQresultStatus(result.raw());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return PgError(result.raw(), conn_, context);
  return Status::Ok();
}

PgTransaction::PgTransaction(PgConnection* c) : c_(c) { status_ = c_->Simple("BEGIN", "beginning a transaction"); }

PgTransaction::~PgTransaction() {
  if (!done_ && status_.ok() && !c_->broken()) (void)c_->Simple("ROLLBACK", "rolling back");
}

Status PgTransaction::Commit() {
  commit_sent_ = true;
  done_ = true;
  return c_->Simple("COMMIT", "committing");
}

PgPool::PgPool(std::string url, Options options)
    : url_(std::move(url)), options_(options), slots_(std::max(1, options.size)), busy_(slots_.size(), false) {}

PgPool::~PgPool() = default;

PgPool::Lease::~Lease() {
  if (pool_) pool_->Release(slot_, conn_);
}

StatusOr<std::unique_ptr<PgConnection>> PgPool::ConnectWithBackoff() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (std::chrono::steady_clock::now() < next_attempt_) {
      return UnavailableError("PostgreSQL is unreachable; reconnecting");
    }
  }
  auto conn = PgConnection::Connect(url_);
  std::lock_guard<std::mutex> lock(mu_);
  if (conn.ok()) {
    backoff_ = std::chrono::milliseconds(0);
    next_attempt_ = {};
  } else {
    backoff_ = backoff_.count() == 0 ? options_.min_backoff : std::min(options_.max_backoff, backoff_ * 2);
    next_attempt_ = std::chrono::steady_clock::now() + backoff_;
  }
  return conn;
}

StatusOr<PgPool::Lease> PgPool::Acquire() {
  int slot = -1;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto free_slot = [&] {
      // An open idle connection first; else an unopened slot.
      for (size_t i = 0; i < slots_.size(); ++i) {
        if (!busy_[i] && slots_[i]) return static_cast<int>(i);
      }
      for (size_t i = 0; i < slots_.size(); ++i) {
        if (!busy_[i]) return static_cast<int>(i);
      }
      return -1;
    };
    if (!cv_.wait_for(lock, options_.acquire_timeout, [&] { return (slot = free_slot()) >= 0; })) {
      return UnavailableError("every PostgreSQL connection stayed busy");
    }
    busy_[slot] = true;
    if (slots_[slot] && slots_[slot]->Alive()) return Lease(this, slot, slots_[slot].get());
    slots_[slot].reset();
  }
  auto conn = ConnectWithBackoff();
  std::lock_guard<std::mutex> lock(mu_);
  if (!conn.ok()) {
    busy_[slot] = false;
    cv_.notify_one();
    return conn.status();
  }
  slots_[slot] = std::move(conn).value();
  return Lease(this, slot, slots_[slot].get());
}

void PgPool::Release(int slot, PgConnection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (conn->broken() || conn->in_transaction()) slots_[slot].reset();  // reopened on next use
  busy_[slot] = false;
  cv_.notify_one();
}

int PgPool::open_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& s : slots_) n += s != nullptr;
  return n;
}

}  // namespace warden::store
