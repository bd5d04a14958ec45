#include "store/store_factory.h"

#include "store/pg_store.h"
#include "store/sqlite_store.h"

namespace warden::store {

bool IsPostgresLocation(std::string_view location) {
  return location.starts_with("postgres://") || location.starts_with("postgresql://");
}

std::string RedactLocation(const std::string& location) {
  if (!IsPostgresLocation(location)) return location;
  // scheme://user:password@host -> scheme://user:***@host
  const size_t scheme = location.find("://") + 3;
  const size_t at = location.find('@', scheme);
  if (at == std::string::npos) return location;
  const size_t colon = location.find(':', scheme);
  if (colon == std::string::npos || colon > at) return location;
  return location.substr(0, colon + 1) + "***" + location.substr(at);
}

StatusOr<OpenedStore> OpenStore(const std::string& location, const Clock& clock, OpenStoreOptions options) {
  OpenedStore out;
  out.description = RedactLocation(location);
  if (IsPostgresLocation(location)) {
    PgStore::Options pg_options;
    if (options.decision_log && !options.local_dir.empty()) pg_options.spill_path = options.local_dir + "/decisions-spill";
    ASSIGN_OR_RETURN(std::unique_ptr<PgStore> pg, PgStore::Open(location, clock, pg_options));
    out.store = std::move(pg);
    out.exclusive = false;
    out.description = "postgres " + out.description;
    return out;
  }
  SqliteStore::Options sqlite_options;
  sqlite_options.decision_log = options.decision_log;
  if (!options.decision_log) sqlite_options.read_connections = 1;
  sqlite_options.decision_open_age_ms = options.decision_chunk_age_ms;
  if (options.test_decision_backlog_bytes > 0) {
    sqlite_options.decision_max_backlog_bytes = options.test_decision_backlog_bytes;
    sqlite_options.decision_mover = false;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SqliteStore> sqlite, SqliteStore::Open(location, clock, sqlite_options));
  SqliteStore* raw = sqlite.get();
  out.maintenance = [raw] { return raw->Checkpoint(); };
  out.store = std::move(sqlite);
  out.description = "sqlite " + out.description;
  return out;
}

}  // namespace warden::store
