// Open, migrations, checkpoints and health of the SQLite store (what is not the same for every
// backend; the rest is in the conformance tests).
#include <sqlite3.h>

#include <cstdio>

#include <catch2/catch.hpp>

#include "store/schema.h"
#include "tests/store/store_test_util.h"

namespace warden::store {
namespace {

using testing::StoreFixture;
using testing::TempDir;

// Runs SQL directly on the file, outside the store (to simulate other versions/corruption).
void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  INFO(msg);
  REQUIRE(rc == SQLITE_OK);
}

int64_t RawInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

std::string RawText(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  std::string v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

TEST_CASE("Open creates the schema at the current version in WAL mode", "[store][migrations]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  {
    auto store = SqliteStore::Open(path, clock);
    REQUIRE(store.ok());
  }
  CHECK(SqliteStore::SchemaVersion() == static_cast<int>(Migrations().size()));
  CHECK(SqliteStore::SchemaVersion() >= 1);
  CHECK(RawInt(path, "SELECT MAX(version) FROM schema_migrations") == SqliteStore::SchemaVersion());
  CHECK(RawInt(path, "SELECT COUNT(*) FROM schema_migrations") == SqliteStore::SchemaVersion());
  CHECK(RawText(path, "PRAGMA journal_mode") == "wal");
  for (const char* table : {"tenants", "users", "sessions", "service_accounts",
                            "service_account_policy_versions", "api_tokens", "audit_log",
                            "decision_chunk"}) {
    INFO(table);
    CHECK(RawInt(path, std::string("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                                   "name = '") + table + "'") == 1);
    // Every table carries its tenant.
    CHECK(RawInt(path, std::string("SELECT COUNT(*) FROM pragma_table_info('") + table +
                           "') WHERE name IN ('tenant_id', 'id')") >= 1);
  }
  for (const char* index : {"decision_chunk_first", "decision_chunk_principal", "decision_chunk_tenant", "audit_log_tenant", "audit_log_target",
                            "service_accounts_live_name"}) {
    INFO(index);
    CHECK(RawInt(path, std::string("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                                   "name = '") + index + "'") == 1);
  }
  // Replaced by decision_chunk in schema version 4 (and dropped once converted).
  CHECK(RawInt(path, "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'decision_log%'") == 0);
}

TEST_CASE("Decision rows of a version-3 database are converted into chunks at Open",
          "[store][migrations]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  { REQUIRE(SqliteStore::Open(path, clock).ok()); }
  // Back to version 3, as an older warden left it: 1,200 rows in decision_log (seqs 1-1200
  // given by AUTOINCREMENT), the oldest 200 of them since pruned.
  RawExec(path, R"sql(
    DROP TABLE decision_chunk;
    DROP TABLE directory_entries;
    ALTER TABLE decision_journal DROP COLUMN last_seq;
    DELETE FROM schema_migrations WHERE version >= 4;
    CREATE TABLE decision_log (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, time INTEGER NOT NULL,
      tenant_id TEXT NOT NULL, principal_type TEXT NOT NULL, principal_id TEXT NOT NULL,
      principal_name TEXT NOT NULL, token_id TEXT NOT NULL, model TEXT NOT NULL,
      action TEXT NOT NULL, resource_id TEXT NOT NULL, allowed INTEGER NOT NULL,
      reason TEXT NOT NULL, rule TEXT NOT NULL, eval_error TEXT NOT NULL,
      policy_revision TEXT NOT NULL, client_addr TEXT NOT NULL, method TEXT NOT NULL,
      path TEXT NOT NULL, request_id TEXT NOT NULL, latency_us INTEGER NOT NULL);
    CREATE INDEX decision_log_principal ON decision_log (tenant_id, principal_id, seq);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
    INSERT INTO decision_log (id, time, tenant_id, principal_type, principal_id, principal_name,
      token_id, model, action, resource_id, allowed, reason, rule, eval_error, policy_revision,
      client_addr, method, path, request_id, latency_us)
    SELECT printf('d%04d', i), 1000 * i, 'default', 'service_account', 'sa-' || (i % 3),
      'name-' || (i % 3), 'tok-' || (i % 3), 'company', CASE i % 2 WHEN 0 THEN 'view' ELSE 'update' END,
      'c' || i, i % 2 = 0, CASE i % 2 WHEN 0 THEN 'ALLOW_RULE' ELSE 'NO_MATCHING_RULE' END,
      'r' || (i % 5), '', 'rev1', '10.0.0.' || (i % 7), 'GET', '/c/' || i, 'req-' || i, i
    FROM n;
    DELETE FROM decision_log WHERE seq <= 200;
  )sql");
  {
    auto opened = SqliteStore::Open(path, clock);
    INFO(opened.status().message());
    REQUIRE(opened.ok());
    auto& store = *opened;
    CHECK(RawInt(path, "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'decision_log%'") == 0);
    CHECK(store->CountDecisions(kDefaultTenantId, "").value() == 1000);
    CHECK(store->CountDecisions(kDefaultTenantId, "sa-1").value() == 333);
    DecisionQuery q;
    q.tenant_id = kDefaultTenantId;
    q.limit = kMaxPageLimit;
    auto all = testing::QueryAll(*store, q);
    REQUIRE(all.size() == 1000);
    for (size_t k = 0; k < all.size(); ++k) {
      const int64_t i = 1200 - static_cast<int64_t>(k);  // newest first
      const DecisionRow& d = all[k];
      INFO("seq " << i);
      CHECK(d.seq == i);
      char id[16];
      std::snprintf(id, sizeof id, "d%04lld", static_cast<long long>(i));
      CHECK(d.id == id);
      CHECK(d.time == 1000 * i);
      CHECK(d.principal_id == "sa-" + std::to_string(i % 3));
      CHECK(d.principal_name == "name-" + std::to_string(i % 3));
      CHECK(d.token_id == "tok-" + std::to_string(i % 3));
      CHECK(d.action == (i % 2 == 0 ? "view" : "update"));
      CHECK(d.allowed == (i % 2 == 0));
      CHECK(d.resource_id == "c" + std::to_string(i));
      CHECK(d.rule == "r" + std::to_string(i % 5));
      CHECK(d.client_addr == "10.0.0." + std::to_string(i % 7));
      CHECK(d.path == "/c/" + std::to_string(i));
      CHECK(d.request_id == "req-" + std::to_string(i));
      CHECK(d.latency_us == i);
    }
    // Seqs go on after the newest converted row.
    std::vector<DecisionRow> more(1, testing::MakeDecision("sa-1", true));
    REQUIRE(store->AppendDecisions(&more).ok());
    CHECK(more[0].seq == 1201);
    REQUIRE(store->FlushDecisions().ok());  // Prune sees moved rows only
    // Retention still counts rows, per principal: keep the newest 10 of each of the three.
    int64_t pruned = 0;
    for (int i = 0; i < 20; ++i) pruned += store->Prune({.max_rows_per_principal = 10}, 100).value();
    CHECK(pruned == 971);
    CHECK(store->CountDecisions(kDefaultTenantId, "").value() == 30);
    CHECK(store->CountDecisions(kDefaultTenantId, "sa-1").value() == 10);
  }
  // Every row pruned: seq still never goes back (the counts per principal are read at Open).
  {
    auto store = SqliteStore::Open(path, clock);
    REQUIRE(store.ok());
    CHECK((*store)->Prune({.max_rows_per_principal = 1}, 1000).value() == 27);
    clock.Advance(1'000'000'000);
    CHECK((*store)->Prune({.max_age_ms = 1}, 1000).value() == 3);
    std::vector<DecisionRow> more(1, testing::MakeDecision("sa-2", true));
    REQUIRE((*store)->AppendDecisions(&more).ok());
    CHECK(more[0].seq == 1202);
  }
}

TEST_CASE("Chunks of a version-5 database are rekeyed by insertion order at Open", "[store][migrations]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  std::vector<DecisionRow> before;
  {
    auto store = SqliteStore::Open(path, clock);
    REQUIRE(store.ok());
    std::vector<DecisionRow> rows;
    for (int i = 0; i < 900; ++i) rows.push_back(testing::MakeDecision("sa-" + std::to_string(i % 7), i % 3 == 0));
    REQUIRE((*store)->AppendDecisions(&rows).ok());
    REQUIRE((*store)->FlushDecisions().ok());
    DecisionQuery q;
    q.tenant_id = kDefaultTenantId;
    q.limit = kMaxPageLimit;
    before = testing::QueryAll(**store, q);
    REQUIRE(before.size() == 900);
  }
  // Back to version 5: decision_chunk keyed by first_seq, its chunks stored in reverse.
  RawExec(path, R"sql(
    CREATE TABLE old_chunk (
      first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, tenant_id TEXT NOT NULL,
      principal_id TEXT NOT NULL, min_time INTEGER NOT NULL, max_time INTEGER NOT NULL,
      row_count INTEGER NOT NULL, rows BLOB NOT NULL);
    INSERT INTO old_chunk SELECT first_seq, last_seq, tenant_id, principal_id, min_time, max_time,
      row_count, rows FROM decision_chunk ORDER BY first_seq DESC;
    DROP TABLE decision_chunk;
    ALTER TABLE old_chunk RENAME TO decision_chunk;
    CREATE INDEX decision_chunk_principal ON decision_chunk (tenant_id, principal_id, last_seq);
    CREATE INDEX decision_chunk_tenant ON decision_chunk (tenant_id, last_seq);
    DELETE FROM schema_migrations WHERE version >= 6;
  )sql");
  const int64_t chunks = RawInt(path, "SELECT COUNT(*) FROM decision_chunk");
  REQUIRE(chunks >= 7);
  auto opened = SqliteStore::Open(path, clock);
  INFO(opened.status().message());
  REQUIRE(opened.ok());
  auto& store = *opened;
  CHECK(RawInt(path, "SELECT COUNT(*) FROM pragma_table_info('decision_chunk') WHERE name = 'id' AND pk = 1") == 1);
  CHECK(RawInt(path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'decision_chunk_first'") == 1);
  CHECK(RawInt(path, "SELECT COUNT(*) FROM decision_chunk") == chunks);
  // Ids follow first_seq: the migration appended the chunks oldest first.
  CHECK(RawInt(path, "SELECT COUNT(*) FROM decision_chunk a JOIN decision_chunk b ON a.id < b.id "
                     "WHERE a.first_seq > b.first_seq") == 0);
  DecisionQuery q;
  q.tenant_id = kDefaultTenantId;
  q.limit = kMaxPageLimit;
  auto after = testing::QueryAll(*store, q);
  REQUIRE(after.size() == before.size());
  for (size_t k = 0; k < after.size(); ++k) {
    CHECK(after[k].seq == before[k].seq);
    CHECK(after[k].id == before[k].id);
    CHECK(after[k].principal_id == before[k].principal_id);
    CHECK(after[k].allowed == before[k].allowed);
  }
  CHECK(store->CountDecisions(kDefaultTenantId, "sa-3").value() == 129);
  // New chunks are appended after the migrated ones; a chunk rewritten by retention too.
  std::vector<DecisionRow> more(1, testing::MakeDecision("sa-1", true));
  REQUIRE(store->AppendDecisions(&more).ok());
  CHECK(more[0].seq == 901);
  REQUIRE(store->FlushDecisions().ok());
  CHECK(RawInt(path, "SELECT first_seq FROM decision_chunk ORDER BY id DESC LIMIT 1") == 901);
  int64_t pruned = 0;
  for (int i = 0; i < 20; ++i) pruned += store->Prune({.max_rows_per_principal = 10}, 100).value();
  CHECK(pruned == 901 - 70);
  CHECK(store->CountDecisions(kDefaultTenantId, "").value() == 70);
}

TEST_CASE("Reopening keeps data and applies no migration twice", "[store][migrations]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  std::string token;
  {
    auto store = SqliteStore::Open(path, clock);
    REQUIRE(store.ok());
    auto tenant = (*store)->EnsureDefaultTenant();
    REQUIRE(tenant.ok());
    token = tenant->tenant_token;
    REQUIRE((*store)->CreateAccount(testing::MakeAccount("crm-sync")).ok());
  }
  auto store = SqliteStore::Open(path, clock);
  REQUIRE(store.ok());
  auto tenant = (*store)->EnsureDefaultTenant();
  REQUIRE(tenant.ok());
  CHECK(tenant->tenant_token == token);
  CHECK((*store)->GetAccountByName(kDefaultTenantId, "crm-sync").ok());
  CHECK(RawInt(path, "SELECT COUNT(*) FROM schema_migrations") == SqliteStore::SchemaVersion());
}

TEST_CASE("A database from a newer version is refused, naming both versions", "[store][migrations]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  { REQUIRE(SqliteStore::Open(path, clock).ok()); }
  const int newer = SqliteStore::SchemaVersion() + 7;
  RawExec(path, "INSERT INTO schema_migrations (version, applied_at) VALUES (" +
                    std::to_string(newer) + ", 0)");
  auto store = SqliteStore::Open(path, clock);
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(store.status().message(), Catch::Contains(std::to_string(newer)));
  CHECK_THAT(store.status().message(),
             Catch::Contains("schema version " + std::to_string(SqliteStore::SchemaVersion())));
}

TEST_CASE("A failing migration leaves the database at its old version", "[store][migrations]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  // A table that migration 1 creates already exists: the migration fails and rolls back.
  RawExec(path, "CREATE TABLE decision_log (x INTEGER)");
  auto store = SqliteStore::Open(path, clock);
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().code() == StatusCode::kInternal);
  CHECK_THAT(store.status().message(), Catch::Contains("migration 1"));
  CHECK(RawInt(path, "SELECT COUNT(*) FROM schema_migrations") == 0);
  CHECK(RawInt(path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'tenants'") == 0);
}

TEST_CASE("Open fails with Unavailable when the directory does not exist", "[store]") {
  FakeClock clock;
  auto store = SqliteStore::Open("/nonexistent-dir-warden/x/w.db", clock);
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().code() == StatusCode::kUnavailable);
}

TEST_CASE("Writers never checkpoint automatically; Checkpoint() does", "[store]") {
  StoreFixture f;
  // SQLite's default autocheckpoint would keep the WAL near 1000 pages (4 MiB with the
  // store's 4 KiB pages): write until the WAL is twice that.
  constexpr int64_t kAutoCheckpointBytes = 1000 * 4096;
  int64_t appended = 0;
  for (int i = 0; i < 400 && f.sqlite->WalSizeBytes() <= 2 * kAutoCheckpointBytes; ++i) {
    std::vector<DecisionRow> rows(5000, testing::MakeDecision("p", true));
    REQUIRE(f.sqlite->AppendDecisions(&rows).ok());
    REQUIRE(f.sqlite->FlushDecisions().ok());  // journaled rows reach the table (and the WAL)
    appended += 5000;
  }
  const int64_t wal_before = f.sqlite->WalSizeBytes();
  CHECK(wal_before > 2 * kAutoCheckpointBytes);
  REQUIRE(f.sqlite->Checkpoint().ok());
  // PASSIVE copies the WAL into the database without shrinking the file (below the limit).
  CHECK(f.sqlite->WalSizeBytes() == wal_before);
  CHECK(f.sqlite->CountDecisions(kDefaultTenantId, "").value() == appended);
}

TEST_CASE("Checkpoint truncates the WAL when it passes the configured size", "[store]") {
  TempDir dir;
  FakeClock clock;
  SqliteStore::Options options;
  options.wal_truncate_bytes = 64 * 1024;
  auto opened = SqliteStore::Open(dir.File("w.db"), clock, options);
  REQUIRE(opened.ok());
  auto& store = *opened;
  REQUIRE(store->EnsureDefaultTenant().ok());
  for (int i = 0; i < 10; ++i) {
    std::vector<DecisionRow> rows(300, testing::MakeDecision("p", true));
    REQUIRE(store->AppendDecisions(&rows).ok());
  }
  REQUIRE(store->FlushDecisions().ok());
  REQUIRE(store->WalSizeBytes() > options.wal_truncate_bytes);
  REQUIRE(store->Checkpoint().ok());
  CHECK(store->WalSizeBytes() == 0);
  // Still fully usable afterwards.
  CHECK(store->CountDecisions(kDefaultTenantId, "").value() == 3000);
  std::vector<DecisionRow> more(1, testing::MakeDecision("p", true));
  CHECK(store->AppendDecisions(&more).ok());
}

TEST_CASE("Ping writes the health row", "[store][sqlite]") {
  StoreFixture f;
  f.clock.Advance(5);
  REQUIRE(f.store->Ping().ok());
  CHECK(RawInt(f.sqlite->path(), "SELECT pinged_at FROM health WHERE id = 1") == f.clock.NowMillis());
}

}  // namespace
}  // namespace warden::store
