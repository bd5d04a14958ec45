// The PostgreSQL side of the tests: whether this run is against PostgreSQL, its server, and a
// schema of a test's own on it. The server is the one WARDEN_TEST_PG names (a libpq URL;
// ctest's pg fixture starts one, scripts/test_pg.sh).
#pragma once

#include <stdlib.h>

#include <string>

#include <catch2/catch.hpp>

#include "common/crypto.h"
#include "store/pg_conn.h"

namespace warden::testing {

// The store tests run against PostgreSQL instead of SQLite (WARDEN_TEST_BACKEND=postgres).
inline bool TestOnPostgres() {
  const char* backend = getenv("WARDEN_TEST_BACKEND");
  return backend != nullptr && std::string(backend) == "postgres";
}

// WARDEN_TEST_PG, or "" when unset.
inline std::string TestPgUrl() {
  const char* url = getenv("WARDEN_TEST_PG");
  return url == nullptr ? "" : url;
}

// A schema of its own on the test server: created now, dropped (with its tables) at the end.
// url() is a libpq URL whose connections use it (search_path).
class PgSchema {
 public:
  PgSchema() : name_("t_" + RandomHex(8)) {
    REQUIRE(!TestPgUrl().empty());
    Run("CREATE SCHEMA " + name_);
    const std::string base = TestPgUrl();
    url_ = base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + name_;
  }
  ~PgSchema() { Run("DROP SCHEMA " + name_ + " CASCADE"); }
  PgSchema(const PgSchema&) = delete;
  PgSchema& operator=(const PgSchema&) = delete;
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

  // Runs a statement of the test on its own connection (schema names cannot be bound).
  static void Run(const std::string& sql) {
    auto c = store::PgConnection::Connect(TestPgUrl());
    REQUIRE(c.ok());
    Status st = (*c)->Simple(sql, "test");
    INFO(st.message());
    REQUIRE(st.ok());
  }

 private:
  std::string name_;
  std::string url_;
};

}  // namespace warden::testing
