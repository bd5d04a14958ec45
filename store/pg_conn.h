// RAII wrappers over libpq, private to store/: a PgConnection owns one PGconn and the names of
// the statements it has prepared; a PgPool hands out a bounded number of connections, opening
// (and, after a lost connection, reopening) them with exponential backoff.
//
// Every statement goes through PgConnection::Exec: prepared once per connection (PQprepare,
// named after its SQL text), then run with bound parameters (PQexecPrepared). SQL texts are
// constants of the code; values are always parameters. The only exceptions are Simple()'s
// BEGIN/COMMIT/LISTEN and the partition DDL of the decision log, whose values are integers the
// code computes (DDL takes no parameters).
//
// Thread-safety: a PgConnection is thread-compatible (one thread at a time: whoever holds its
// PgPool::Lease). PgPool is thread-safe.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace warden::store {

// Parameters of one statement, in order ($1, $2, ...). Text format, except AddBytes (binary:
// bytea).
class PgParams {
 public:
  PgParams& Add(std::string_view text);
  PgParams& Add(const std::string& text) { return Add(std::string_view(text)); }
  PgParams& Add(const char* text) { return Add(std::string_view(text)); }
  PgParams& Add(int64_t value);
  PgParams& Add(int value) { return Add(static_cast<int64_t>(value)); }
  PgParams& Add(bool value);
  PgParams& AddBytes(std::string_view bytes);
  int size() const { return static_cast<int>(values_.size()); }

 private:
  friend class PgConnection;
  std::vector<std::string> values_;
  std::vector<int> formats_;
};

// A statement's result rows (text format). Owns the PGresult.
class PgResult {
 public:
  explicit PgResult(PGresult* r = nullptr) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult();

  int rows() const { return r_ ? PQntuples(r_) : 0; }
  // Rows changed by INSERT/UPDATE/DELETE.
  int64_t affected() const;
  bool IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string Text(int row, int col) const;
  std::string_view View(int row, int col) const;
  int64_t Int(int row, int col) const;
  bool Bool(int row, int col) const;  // 't' / 'f'
  std::string Bytes(int row, int col) const;  // a bytea column
  PGresult* raw() const { return r_; }

 private:
  PGresult* r_;
};

// Maps a failed result to a Status: unique violation -> AlreadyExists, foreign key -> NotFound,
// bad text encoding -> InvalidArgument, connection/admin shutdown/serialization/lock timeout
// -> Unavailable, others Internal. `context` says what was being done.
Status PgError(const PGresult* result, PGconn* conn, std::string_view context);

class PgConnection {
 public:
  // Connects (connect_timeout 3 s unless the URL sets one). Unavailable on failure.
  static StatusOr<std::unique_ptr<PgConnection>> Connect(const std::string& url);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Prepares `sql` on first use, then runs it with `params`.
  StatusOr<PgResult> Exec(const std::string& sql, const PgParams& params, std::string_view context);
  StatusOr<PgResult> Exec(const std::string& sql, std::string_view context) { return Exec(sql, PgParams(), context); }
  // An unprepared statement without parameters (BEGIN, COMMIT, LISTEN, DDL the code builds).
  Status Simple(const std::string& sql, std::string_view context);
  // The connection is gone (the server closed it, the network failed): throw it away.
  bool broken() const { return PQstatus(conn_) == CONNECTION_BAD; }
  // False when the server closed the connection while it sat idle in the pool (restart,
  // pg_terminate_backend): reads what is pending without blocking.
  bool Alive();
  bool in_transaction() const { return PQtransactionStatus(conn_) != PQTRANS_IDLE; }
  PGconn* raw() { return conn_; }

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  PGconn* conn_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
};

// A transaction on a connection: BEGIN now, ROLLBACK on destruction unless Commit() succeeded.
class PgTransaction {
 public:
  explicit PgTransaction(PgConnection* c);
  ~PgTransaction();
  const Status& status() const { return status_; }
  Status Commit();
  // True once COMMIT was sent: a failure after that has an unknown outcome (never retried).
  bool commit_sent() const { return commit_sent_; }

 private:
  PgConnection* c_;
  Status status_;
  bool done_ = false;
  bool commit_sent_ = false;
};

class PgPool {
 public:
  struct Options {
    int size = 8;  // connections at most
    // How long Acquire waits for a connection another thread holds.
    std::chrono::milliseconds acquire_timeout{2000};
    // After a failed connect, the next attempt waits this long, doubling up to max_backoff.
    std::chrono::milliseconds min_backoff{50};
    std::chrono::milliseconds max_backoff{2000};
  };

  PgPool(std::string url, Options options);
  ~PgPool();

  class Lease {
   public:
    Lease(PgPool* pool, int slot, PgConnection* conn) : pool_(pool), slot_(slot), conn_(conn) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), slot_(o.slot_), conn_(o.conn_) { o.pool_ = nullptr; }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    PgConnection& operator*() const { return *conn_; }
    PgConnection* operator->() const { return conn_; }

   private:
    PgPool* pool_;
    int slot_;
    PgConnection* conn_;
  };

  // A connection for this thread alone. Unavailable when none can be had: the database is
  // unreachable (connects are retried with backoff; during the backoff this fails at once),
  // or every connection stayed busy for acquire_timeout.
  StatusOr<Lease> Acquire();
  const std::string& url() const { return url_; }
  // Connections currently open (for metrics and tests).
  int open_connections() const;

 private:
  void Release(int slot, PgConnection* conn);
  StatusOr<std::unique_ptr<PgConnection>> ConnectWithBackoff();

  const std::string url_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> slots_;  // guarded by mu_; null = not open
  std::vector<bool> busy_;                            // guarded by mu_
  std::chrono::steady_clock::time_point next_attempt_{};  // guarded by mu_
  std::chrono::milliseconds backoff_{0};                  // guarded by mu_
};

}  // namespace warden::store
