// The SQLite error mapping and the RAII wrappers.
#include "store/sqlite_db.h"

#include <catch2/catch.hpp>

#include "tests/store/store_test_util.h"

namespace warden::store {
namespace {

TEST_CASE("SQLite result codes map to Status codes", "[store][sqlite]") {
  struct Case {
    int rc;
    StatusCode want;
  };
  auto c = GENERATE(Case{SQLITE_CONSTRAINT_UNIQUE, StatusCode::kAlreadyExists},
                    Case{SQLITE_CONSTRAINT_PRIMARYKEY, StatusCode::kAlreadyExists},
                    Case{SQLITE_CONSTRAINT_FOREIGNKEY, StatusCode::kNotFound},
                    Case{SQLITE_CONSTRAINT_NOTNULL, StatusCode::kInternal},
                    Case{SQLITE_FULL, StatusCode::kUnavailable},
                    Case{SQLITE_IOERR, StatusCode::kUnavailable},
                    Case{SQLITE_IOERR_FSYNC, StatusCode::kUnavailable},
                    Case{SQLITE_BUSY, StatusCode::kUnavailable},
                    Case{SQLITE_CANTOPEN, StatusCode::kUnavailable},
                    Case{SQLITE_CORRUPT, StatusCode::kInternal},
                    Case{SQLITE_ERROR, StatusCode::kInternal});
  Status st = SqliteError(c.rc, "doing it", "detail");
  INFO(st.ToString());
  CHECK(st.code() == c.want);
  CHECK_THAT(st.message(), Catch::StartsWith("doing it: "));
}

TEST_CASE("Stmt binds values, never formats them, and resets on scope exit", "[store][sqlite]") {
  testing::TempDir dir;
  auto conn = Connection::Open(dir.File("x.db"), 1000);
  REQUIRE(conn.ok());
  Connection& c = **conn;
  REQUIRE(c.Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER, b BLOB)", "create").ok());
  const std::string hostile = "x'); DROP TABLE t; --";
  const std::string blob("\0\1\2\xff", 4);
  {
    auto s = c.Prepare("INSERT INTO t (k, v, b) VALUES (?, ?, ?)");
    REQUIRE(s.ok());
    s->Bind(1, hostile).Bind(2, int64_t{7}).BindBlob(3, blob);
    REQUIRE(s->Run("insert").ok());
  }
  {
    auto s = c.Prepare("INSERT INTO t (k, v, b) VALUES (?, ?, ?)");  // cached, reset
    REQUIRE(s.ok());
    s->Bind(1, hostile).Bind(2, int64_t{8}).BindBlob(3, blob);
    Status st = s->Run("insert again");
    CHECK(st.code() == StatusCode::kAlreadyExists);
    CHECK(st.message().find("DROP") == std::string::npos);  // values never in messages
  }
  auto s = c.Prepare("SELECT k, v, b FROM t");
  REQUIRE(s.ok());
  auto row = s->Step("select");
  REQUIRE(row.ok());
  REQUIRE(*row);
  CHECK(s->Text(0) == hostile);
  CHECK(s->Int(1) == 7);
  CHECK(s->Blob(2) == blob);
  CHECK_FALSE(*s->Step("select"));
}

TEST_CASE("Transaction rolls back unless committed", "[store][sqlite]") {
  testing::TempDir dir;
  auto conn = Connection::Open(dir.File("x.db"), 1000);
  REQUIRE(conn.ok());
  Connection& c = **conn;
  REQUIRE(c.Exec("CREATE TABLE t (v INTEGER)", "create").ok());
  {
    Transaction tx(&c);
    REQUIRE(tx.status().ok());
    REQUIRE(c.Exec("INSERT INTO t VALUES (1)", "insert").ok());
  }
  {
    Transaction tx(&c);
    REQUIRE(tx.status().ok());
    REQUIRE(c.Exec("INSERT INTO t VALUES (2)", "insert").ok());
    REQUIRE(tx.Commit().ok());
  }
  auto s = c.Prepare("SELECT group_concat(v) FROM t");
  REQUIRE(s.ok());
  REQUIRE(*s->Step("select"));
  CHECK(s->Text(0) == "2");
}

TEST_CASE("A malformed statement is an Internal error, not a crash", "[store][sqlite]") {
  testing::TempDir dir;
  auto conn = Connection::Open(dir.File("x.db"), 1000);
  REQUIRE(conn.ok());
  CHECK((*conn)->Prepare("SELEC nonsense").status().code() == StatusCode::kInternal);
  CHECK((*conn)->Exec("SELEC nonsense", "x").code() == StatusCode::kInternal);
}

}  // namespace
}  // namespace warden::store
