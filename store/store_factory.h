// Opens the store a location names, so that server/ never knows which backend runs:
//   postgres://... or postgresql://...  PgStore (store/pg_store.h), shared by replicas
//   anything else                       SqliteStore (store/sqlite_store.h) on that file
// Thread-safety: OpenStore may be called from any thread; what it returns is thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace warden::store {

struct OpenedStore {
  std::unique_ptr<Store> store;
  // Background work the server runs about once a second (SQLite's WAL checkpoint); empty
  // when the backend needs none.
  std::function<Status()> maintenance;
  // For logs: the backend and where, without a password.
  std::string description;
  // False for a store several processes share (the data directory need not be private to
  // one process); true for SQLite.
  bool exclusive = true;
};

struct OpenStoreOptions {
  // False for tools that change admin state beside a running server (warden admin): SQLite's
  // decision journal belongs to the server.
  bool decision_log = true;
  // A directory of this process's own (the server's data directory): PostgreSQL's store keeps
  // its spill file of decision rows there (PgStore::Options::spill_path). Empty: none.
  std::string local_dir;
  // SQLite: SqliteStore::Options::decision_open_age_ms.
  int64_t decision_chunk_age_ms = 30000;
  // Tests only (SQLite): > 0 is the decision log's backlog bound, with no background mover.
  int64_t test_decision_backlog_bytes = 0;
};

bool IsPostgresLocation(std::string_view location);
// `location` with the password of a URL replaced by "***".
std::string RedactLocation(const std::string& location);

StatusOr<OpenedStore> OpenStore(const std::string& location, const Clock& clock, OpenStoreOptions options = {});

}  // namespace warden::store
