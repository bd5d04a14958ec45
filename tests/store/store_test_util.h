// Helpers for the store tests: a temporary directory and a freshly opened store.
//
// The conformance tests (tagged [conformance]) run against every backend: SQLite always, and
// PostgreSQL when WARDEN_TEST_BACKEND=postgres, on the server WARDEN_TEST_PG names (a libpq
// URL); each StoreFixture then gets a schema of its own, dropped at the end
// (tests/store/run_pg.sh, ctest's store_test_pg).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/clock.h"
#include "store/pg_store.h"
#include "store/sqlite_store.h"
#include "tests/pg_test_schema.h"

namespace warden::store::testing {

// A directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string base = std::filesystem::temp_directory_path() / "warden_store_XXXXXX";
    char* made = mkdtemp(base.data());
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A fresh store with the default tenant created and a fake clock: SQLite on a file in a
// temporary directory, or PostgreSQL in a fresh schema (TestOnPostgres()).
struct StoreFixture {
  TempDir dir;
  FakeClock clock;
  std::unique_ptr<::warden::testing::PgSchema> schema;  // PostgreSQL only
  std::unique_ptr<Store> store;
  SqliteStore* sqlite = nullptr;  // the backend's own type, one of these set
  PgStore* pg = nullptr;

  StoreFixture() {
    if (::warden::testing::TestOnPostgres()) schema = std::make_unique<::warden::testing::PgSchema>();
    Reopen();
    REQUIRE(store->EnsureDefaultTenant().ok());
  }
  ~StoreFixture() { store.reset(); }

  // Closes the store and opens the same database again.
  void Reopen() {
    store.reset();
    sqlite = nullptr;
    pg = nullptr;
    if (schema) {
      auto opened = PgStore::Open(schema->url(), clock);
      INFO(opened.status().message());
      REQUIRE(opened.ok());
      pg = opened->get();
      store = std::move(opened).value();
    } else {
      auto opened = SqliteStore::Open(dir.File("warden.db"), clock);
      REQUIRE(opened.ok());
      sqlite = opened->get();
      store = std::move(opened).value();
    }
  }
  // SQLite moves journaled decisions into its table in the background; this does it now.
  void Flush() {
    if (sqlite) REQUIRE(sqlite->FlushDecisions().ok());
  }
  Status Checkpoint() { return sqlite ? sqlite->Checkpoint() : Status::Ok(); }
  Status Import(std::vector<ServiceAccount>* accounts, const std::vector<ApiTokenRecord>& tokens) {
    return sqlite ? sqlite->ImportAccounts(accounts, tokens) : pg->ImportAccounts(accounts, tokens);
  }
};

// The default tenant's audit rows, optionally for one target, up to the largest page.
inline AuditQuery AuditFor(const std::string& target_id = "") {
  AuditQuery q;
  q.tenant_id = kDefaultTenantId;
  q.target_id = target_id;
  q.limit = kMaxPageLimit;
  return q;
}

inline std::string Hash32(char fill) { return std::string(32, fill); }

inline ApiTokenRecord MakeToken(const std::string& id, const std::string& account_id,
                                const std::string& name = "t") {
  ApiTokenRecord t;
  t.id = id;
  t.tenant_id = kDefaultTenantId;
  t.account_id = account_id;
  t.name = name;
  t.secret_hash = Hash32('h');
  t.display_prefix = "wdn_" + id.substr(0, 4) + "…";
  t.created_by_type = kActorUser;
  t.created_by_id = "u1";
  return t;
}

inline ServiceAccount MakeAccount(const std::string& name, const std::string& policy = "rules: []\n") {
  ServiceAccount a;
  a.tenant_id = kDefaultTenantId;
  a.name = name;
  a.description = "desc of " + name;
  a.policy_yaml = policy;
  a.created_by_type = kActorUser;
  a.created_by_id = "u-admin";
  return a;
}

inline DecisionRow MakeDecision(const std::string& principal_id, bool allowed,
                                const std::string& model = "invoice",
                                const std::string& action = "view") {
  DecisionRow d;
  d.tenant_id = kDefaultTenantId;
  d.principal_type = "service_account";
  d.principal_id = principal_id;
  d.principal_name = "name-" + principal_id;
  d.token_id = "tok0000001";
  d.model = model;
  d.action = action;
  d.resource_id = "r1";
  d.allowed = allowed;
  d.reason = allowed ? "ALLOWED" : "DENIED_NO_RULE";
  d.rule = allowed ? "rule-1" : "";
  d.policy_revision = "rev1";
  d.client_addr = "127.0.0.1";
  d.method = "GET";
  d.path = "/x";
  d.request_id = "req";
  d.latency_us = 42;
  return d;
}

// Every decision row matching `q` (the default tenant's, when q is empty), newest first,
// following cursors.
inline std::vector<DecisionRow> QueryAll(Store& store, DecisionQuery q = {}) {
  if (q.tenant_id.empty()) q.tenant_id = kDefaultTenantId;
  q.cursor.clear();
  std::vector<DecisionRow> out;
  while (true) {
    auto page = store.Query(q);
    REQUIRE(page.ok());
    out.insert(out.end(), page->items.begin(), page->items.end());
    if (page->next_cursor.empty()) return out;
    q.cursor = page->next_cursor;
  }
}

struct StringField {
  const char* name;
  std::string DecisionRow::*member;
};

// The 17 strings of a row, in the journal's encoding order.
constexpr StringField kStringFields[] = {
    {"id", &DecisionRow::id},
    {"tenant_id", &DecisionRow::tenant_id},
    {"principal_type", &DecisionRow::principal_type},
    {"principal_id", &DecisionRow::principal_id},
    {"principal_name", &DecisionRow::principal_name},
    {"token_id", &DecisionRow::token_id},
    {"model", &DecisionRow::model},
    {"action", &DecisionRow::action},
    {"resource_id", &DecisionRow::resource_id},
    {"reason", &DecisionRow::reason},
    {"rule", &DecisionRow::rule},
    {"eval_error", &DecisionRow::eval_error},
    {"policy_revision", &DecisionRow::policy_revision},
    {"client_addr", &DecisionRow::client_addr},
    {"method", &DecisionRow::method},
    {"path", &DecisionRow::path},
    {"request_id", &DecisionRow::request_id},
    {"caller_id", &DecisionRow::caller_id},
    {"caller_name", &DecisionRow::caller_name},
};

// A row whose strings differ from each other and from those of any other `n` (so a swapped or
// shifted field cannot go unnoticed), with embedded and leading NULs, quotes, escapes,
// multi-byte and invalid UTF-8, one empty string and one longer than 64 KiB.
inline DecisionRow OddRow(int n) {
  const std::string k = std::to_string(n);
  DecisionRow r;
  r.seq = (int64_t{1} << 40) + n;
  r.time = n % 2 ? std::numeric_limits<int64_t>::min() + n : 1'700'000'000'000 + n;
  r.latency_us = std::numeric_limits<int64_t>::max() - n;
  r.allowed = n % 2 == 0;
  r.id = "01J" + k;
  r.tenant_id = std::string("t\0", 2) + k;
  r.principal_type = "\"quoted\" 'single' " + k;
  r.principal_id = "p\\" + k + "\n\t\r";
  r.principal_name = "名前 é ü 🙂 " + k;
  r.token_id = std::string("\0\0\0", 3) + k;
  r.model = "\xff\xfe invalid utf-8 " + k;
  r.action = "";
  r.resource_id = std::string(70'000, 'r') + k;
  r.reason = "DENIED_NO_RULE " + k;
  r.rule = k + std::string(1, '\0');
  r.eval_error = "attr \"x\" missing " + k;
  r.policy_revision = "rev " + k;
  r.client_addr = "[::1]:" + k;
  r.method = "GET " + k;
  r.path = "/a?b=c&d='e' " + k;
  r.request_id = "req-" + k;
  r.caller_id = "caller\x01 " + k;
  r.caller_name = "pep \u00e9 " + k;
  return r;
}

inline void CheckSameRow(const DecisionRow& got, const DecisionRow& want) {
  INFO("request_id " << want.request_id);
  CHECK(got.seq == want.seq);
  CHECK(got.time == want.time);
  CHECK(got.latency_us == want.latency_us);
  CHECK(got.allowed == want.allowed);
  for (const StringField& f : kStringFields) {
    INFO("field " << f.name);
    CHECK(got.*f.member == want.*f.member);
  }
}

}  // namespace warden::store::testing
