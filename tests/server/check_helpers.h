// Helpers shared by the end-to-end tests of /v1/check and the decision history: creating
// accounts and tokens through the admin API, reading every page of a history, counting
// decision-log rows in the database file (read-only, outside the server) and reading metrics.
// Must be called from the test's main thread (they use Catch2 assertions).
#pragma once

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/decision_chunk.h"
#include "tests/server/harness.h"

namespace warden::testing {

struct AccountRef {
  std::string id;
  std::string name;
};

struct TokenRef {
  std::string id;
  std::string token;
};

// Creates a service account whose permissions are copied from `from_kind` ("role",
// "service_account" or "scratch") named `from_name`.
inline AccountRef CreateAccount(const TestServer& server, const std::string& session, const std::string& name,
                                const std::string& from_kind = "role", const std::string& from_name = "viewer") {
  nlohmann::json from = {{"kind", from_kind}};
  if (from_kind != "scratch") from["name"] = from_name;
  Reply r = server.Post("/v1/service-accounts", {{"name", name}, {"copy_permissions_from", from}}, session);
  INFO(r.body);
  REQUIRE(r.status == 201);
  return {r.json["id"].get<std::string>(), name};
}

inline TokenRef CreateToken(const TestServer& server, const std::string& session, const std::string& account,
                            const std::string& name = "t1", const std::string& expires_at = "") {
  nlohmann::json body = {{"name", name}};
  if (!expires_at.empty()) body["expires_at"] = expires_at;
  Reply r = server.Post("/v1/service-accounts/" + account + "/tokens", body, session);
  INFO(r.body);
  REQUIRE(r.status == 201);
  return {r.json["id"].get<std::string>(), r.json["token"].get<std::string>()};
}

// One single check with an API token.
inline Reply Check(const TestServer& server, const std::string& token, const std::string& model,
                   const std::string& action, const nlohmann::json& resource = nullptr) {
  nlohmann::json body = {{"token", token}, {"model", model}, {"action", action}};
  if (!resource.is_null()) body["resource"] = resource;
  return server.Post("/v1/check", body);
}

// The reason of a single check that must have been answered 200.
inline std::string CheckReason(const TestServer& server, const std::string& token, const std::string& model,
                               const std::string& action, const nlohmann::json& resource = nullptr) {
  Reply r = Check(server, token, model, action, resource);
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json["reason"].get<std::string>();
}

// Every item of a paged history (`path` may already hold a query), newest first.
inline std::vector<nlohmann::json> AllPages(const TestServer& server, const std::string& session,
                                            const std::string& path, int limit = 1000) {
  std::vector<nlohmann::json> items;
  std::string cursor;
  const char sep = path.find('?') == std::string::npos ? '?' : '&';
  for (int page = 0; page < 10000; ++page) {
    std::string url = path + sep + "limit=" + std::to_string(limit);
    if (!cursor.empty()) url += "&cursor=" + cursor;
    Reply r = server.Get(url, session);
    INFO(url << " -> " << r.body);
    REQUIRE(r.status == 200);
    for (const auto& item : r.json["items"]) items.push_back(item);
    if (!r.json.contains("next_cursor") || r.json["next_cursor"].is_null()) return items;
    cursor = r.json["next_cursor"].get<std::string>();
  }
  FAIL("paging did not end");
  return items;
}

inline std::vector<std::string> DecisionIds(const std::vector<nlohmann::json>& items) {
  std::vector<std::string> ids;
  for (const auto& item : items) ids.push_back(item["decision_id"].get<std::string>());
  return ids;
}

inline std::string DbPath(const TestServer& server) { return server.options().data_dir + "/warden.db"; }

// Runs `sql` with the sqlite3 CLI on the database file, read-only; returns its output.
inline std::string Sqlite(const std::string& db, const std::string& sql) {
  std::string out;
  int rc = RunCommand("sqlite3 -readonly -batch '" + db + "' \"" + sql + "\" 2>&1", &out);
  INFO("sqlite3 " << sql << ": " << out);
  REQUIRE(rc == 0);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// The value of one Prometheus sample, e.g.
// `warden_decisions_total{allowed="true",reason="ALLOW_RULE"}`; nullopt when absent.
inline std::optional<double> MetricValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ') {
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
  }
  return std::nullopt;
}

// The server journals decision rows first and moves them into decision_chunk within ~50 ms
// (store/decision_journal.h). Waits until the table holds everything journaled so far.
inline void WaitForDecisionTable(const TestServer& server) {
  for (int i = 0; i < 1000; ++i) {
    auto backlog = MetricValue(server.Get("/metrics").body, "warden_decision_journal_backlog_bytes");
    REQUIRE(backlog.has_value());
    if (*backlog == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL("the decision journal was not moved into decision_chunk within 10 s");
}

// Every decision row in the database file `db`, read with SQLite outside the server (chunks
// decoded by store/decision_chunk.h). Each chunk's row_count must match its blob.
inline std::vector<store::DecisionRow> StoredDecisions(const std::string& db) {
  sqlite3* conn = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(conn, 5000);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(conn, "SELECT row_count, rows FROM decision_chunk", -1, &st, nullptr) ==
          SQLITE_OK);
  std::vector<store::DecisionRow> rows;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const size_t before = rows.size();
    std::string_view blob(static_cast<const char*>(sqlite3_column_blob(st, 1)),
                          static_cast<size_t>(sqlite3_column_bytes(st, 1)));
    CHECK(store::DecodeChunk(blob, &rows).ok());
    CHECK(static_cast<int64_t>(rows.size() - before) == sqlite3_column_int64(st, 0));
  }
  CHECK(rc == SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(conn);
  return rows;
}

inline int64_t DecisionRowCount(const TestServer& server) {
  WaitForDecisionTable(server);
  return static_cast<int64_t>(StoredDecisions(DbPath(server)).size());
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

}  // namespace warden::testing
