// RAII wrappers over the SQLite C API, private to store/: a Connection owns one sqlite3*
// and a cache of its prepared statements; a Stmt is a borrowed, bound statement that resets
// itself when it goes out of scope; a Transaction rolls back unless committed.
//
// Thread-safety: a Connection is thread-compatible: one thread at a time, which the owner
// guarantees with a mutex (the Connection carries one for owners that want it). Every SQL
// text given to Prepare is a constant of the code; values are always bound.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

namespace warden::store {

// Maps a SQLite result code to a Status: unique/primary-key constraint -> AlreadyExists,
// foreign key -> NotFound, full/I/O/busy/locked/cantopen -> Unavailable, others Internal.
// `context` says what was being done; `detail` is sqlite3_errmsg (never holds bound values).
Status SqliteError(int rc, std::string_view context, std::string_view detail = {});

class Connection;

class Stmt {
 public:
  Stmt(sqlite3_stmt* stmt, Connection* conn) : stmt_(stmt), conn_(conn) {}
  Stmt(Stmt&& other) noexcept : stmt_(other.stmt_), conn_(other.conn_) { other.stmt_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt();

  // 1-based parameter index, as in SQLite.
  Stmt& Bind(int index, std::string_view text);
  // Without a copy: `text` must stay alive and unchanged until the statement is reset.
  Stmt& BindStatic(int index, std::string_view text);
  Stmt& Bind(int index, const std::string& text) { return Bind(index, std::string_view(text)); }
  Stmt& Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  Stmt& Bind(int index, int64_t value);
  Stmt& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  Stmt& Bind(int index, bool value) { return Bind(index, static_cast<int64_t>(value ? 1 : 0)); }
  Stmt& BindBlob(int index, std::string_view bytes);

  // true when a row is available, false when done.
  StatusOr<bool> Step(std::string_view context);
  // Steps until done (for INSERT/UPDATE/DELETE).
  Status Run(std::string_view context);
  // Ready to bind and run again (for loops over one statement).
  void Reset();

  // 0-based column index, as in SQLite.
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool Bool(int col) const { return sqlite3_column_int64(stmt_, col) != 0; }
  std::string Text(int col) const;
  std::string Blob(int col) const;
  // Without a copy: valid until the next Step() or Reset().
  std::string_view BlobView(int col) const;

 private:
  sqlite3_stmt* stmt_;
  Connection* conn_;
  int bind_rc_ = SQLITE_OK;  // first binding error, reported by Step
};

class Connection {
 public:
  // Opens (creating when absent) with SQLITE_OPEN_NOMUTEX: the owner serialises use.
  static StatusOr<std::unique_ptr<Connection>> Open(const std::string& path, int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs constant SQL without parameters (pragmas, migrations, BEGIN/COMMIT).
  Status Exec(const char* sql, std::string_view context);
  // A cached prepared statement for constant `sql`, reset and with bindings cleared.
  StatusOr<Stmt> Prepare(const std::string& sql);

  int64_t Changes() const { return sqlite3_changes64(db_); }
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
  std::string ErrorMessage() const { return sqlite3_errmsg(db_); }
  sqlite3* raw() { return db_; }
  std::mutex& mu() { return mu_; }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  struct StmtDeleter {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };

  sqlite3* db_;
  std::unordered_map<std::string, std::unique_ptr<sqlite3_stmt, StmtDeleter>> cache_;
  std::mutex mu_;  // for owners that share the connection between threads
};

// BEGIN IMMEDIATE on construction (check status()), ROLLBACK on destruction unless Commit()
// succeeded.
class Transaction {
 public:
  explicit Transaction(Connection* conn);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  const Status& status() const { return begin_status_; }
  Status Commit();

 private:
  Connection* conn_;
  Status begin_status_;
  bool open_ = false;
};

}  // namespace warden::store
