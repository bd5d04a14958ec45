#include "store/sqlite_db.h"

#include <string>

namespace warden::store {

Status SqliteError(int rc, std::string_view context, std::string_view detail) {
  std::string msg(context);
  msg += ": ";
  msg += sqlite3_errstr(rc);
  if (!detail.empty() && detail != sqlite3_errstr(rc)) {
    msg += " (";
    msg += detail;
    msg += ")";
  }
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return AlreadyExistsError(std::move(msg));
      }
      if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return NotFoundError(std::move(msg));
      return InternalError(std::move(msg));
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return UnavailableError(std::move(msg));
    default:
      return InternalError(std::move(msg));
  }
}

Stmt::~Stmt() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Stmt& Stmt::Bind(int index, std::string_view text) {
  int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                               SQLITE_UTF8);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::BindStatic(int index, std::string_view text) {
  int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::BindBlob(int index, std::string_view bytes) {
  int rc = sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

StatusOr<bool> Stmt::Step(std::string_view context) {
  if (bind_rc_ != SQLITE_OK) return SqliteError(bind_rc_, context, "bind");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  int ext = sqlite3_extended_errcode(conn_->raw());
  return SqliteError(ext != SQLITE_OK ? ext : rc, context, conn_->ErrorMessage());
}

Status Stmt::Run(std::string_view context) {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step(context));
    if (!row) return Status::Ok();
  }
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_rc_ = SQLITE_OK;
}

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
}

std::string Stmt::Blob(int col) const { return std::string(BlobView(col)); }

std::string_view Stmt::BlobView(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  if (p == nullptr) return {};
  return std::string_view(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
}

StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& path,
                                                       int busy_timeout_ms) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string detail = db != nullptr ? sqlite3_errmsg(db) : "";
    sqlite3_close_v2(db);
    return SqliteError(rc, "opening database " + path, detail);
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return std::unique_ptr<Connection>(new Connection(db));
}

Connection::~Connection() {
  cache_.clear();  // finalize statements before closing
  sqlite3_close_v2(db_);
}

Status Connection::Exec(const char* sql, std::string_view context) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  std::string detail = err != nullptr ? err : "";
  sqlite3_free(err);
  if (rc != SQLITE_OK) {
    int ext = sqlite3_extended_errcode(db_);
    return SqliteError(ext != SQLITE_OK ? ext : rc, context, detail);
  }
  return Status::Ok();
}

StatusOr<Stmt> Connection::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    if (rc != SQLITE_OK) {
      return SqliteError(rc, "preparing a statement", sqlite3_errmsg(db_));
    }
    it = cache_.emplace(sql, std::unique_ptr<sqlite3_stmt, StmtDeleter>(raw)).first;
  }
  return Stmt(it->second.get(), this);
}

Transaction::Transaction(Connection* conn) : conn_(conn) {
  begin_status_ = conn_->Exec("BEGIN IMMEDIATE", "beginning a transaction");
  open_ = begin_status_.ok();
}

Transaction::~Transaction() {
  if (open_) (void)conn_->Exec("ROLLBACK", "rolling back");
}

Status Transaction::Commit() {
  Status st = conn_->Exec("COMMIT", "committing");
  if (st.ok()) {
    open_ = false;
  } else if (sqlite3_get_autocommit(conn_->raw())) {
    open_ = false;  // SQLite already rolled back
  }
  return st;
}

}  // namespace warden::store
