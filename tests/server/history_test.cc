// End-to-end tests of the request history: cursor paging while rows keep arriving, the
// filters of GET /v1/service-accounts/{id}/logs and GET /v1/decisions, the limit cap, and
// retention by row count.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "common/clock.h"
#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

namespace warden::testing {
namespace {

using json = nlohmann::json;

TEST_CASE("history: paging never repeats or skips a row while checks keep arriving", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "pager", "role", "viewer");
  const std::string token = CreateToken(server, session, acct.name).token;
  for (int i = 0; i < 30; ++i) REQUIRE(CheckReason(server, token, "company", "view") == "ALLOW_RULE");

  // The writer: one keep-alive connection issuing checks until told to stop.
  std::atomic<bool> stop{false};
  std::atomic<int> written{0}, failed{0};
  std::thread writer([&] {
    httplib::Client client("127.0.0.1", server.port());
    client.set_keep_alive(true);
    const std::string body = json{{"token", token}, {"model", "enduser"}, {"action", "view"}}.dump();
    while (!stop.load()) {
      auto r = client.Post("/v1/check", body, "application/json");
      if (r && r->status == 200) written++;
      else failed++;
    }
  });

  const std::string logs = "/v1/service-accounts/" + acct.id + "/logs";
  std::vector<std::string> paged;
  std::string cursor;
  int pages = 0;
  for (;;) {
    std::string url = logs + "?limit=7" + (cursor.empty() ? "" : "&cursor=" + cursor);
    Reply r = server.Get(url, session);
    INFO(url << " -> " << r.body);
    REQUIRE(r.status == 200);
    CHECK(r.json["items"].size() <= 7);
    for (const auto& item : r.json["items"]) paged.push_back(item["decision_id"].get<std::string>());
    ++pages;
    if (r.json["next_cursor"].is_null()) break;
    CHECK(r.json["items"].size() == 7);
    cursor = r.json["next_cursor"].get<std::string>();
    // Let at least one new row arrive between two pages.
    const int seen = written.load();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (written.load() == seen && failed.load() == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }
  stop = true;
  writer.join();
  CHECK(failed.load() == 0);
  REQUIRE(written.load() >= pages - 1);

  std::set<std::string> unique(paged.begin(), paged.end());
  CHECK(unique.size() == paged.size());  // no repeats
  CHECK(pages >= 5);

  // Against the full history read after the writer stopped: the pages are exactly the rows
  // at and below the first page's first row, in order.
  std::vector<std::string> all = DecisionIds(AllPages(server, session, logs));
  CHECK(all.size() == static_cast<size_t>(30 + written.load()));
  auto first = std::find(all.begin(), all.end(), paged.front());
  REQUIRE(first != all.end());
  std::vector<std::string> expected(first, all.end());
  CHECK(paged == expected);
  CHECK(first != all.begin());  // rows did arrive after the first page
}

TEST_CASE("history: filters combine, the limit is capped, /v1/decisions spans the tenant", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path()});
  const std::string session = server.Login();
  AccountRef csm = CreateAccount(server, session, "filtered", "role", "csm");
  AccountRef other = CreateAccount(server, session, "bystander", "role", "viewer");
  const std::string token = CreateToken(server, session, csm.name).token;
  const std::string other_token = CreateToken(server, session, other.name).token;

  // Group A: company view x2 (allow), company delete (deny), enduser view (allow).
  REQUIRE(CheckReason(server, token, "company", "view") == "ALLOW_RULE");
  REQUIRE(CheckReason(server, token, "company", "view") == "ALLOW_RULE");
  REQUIRE(CheckReason(server, token, "company", "delete") == "NO_MATCHING_ALLOW");
  REQUIRE(CheckReason(server, token, "enduser", "view") == "ALLOW_RULE");
  const std::string logs = "/v1/service-accounts/" + csm.id + "/logs";
  const std::vector<json> group_a = AllPages(server, session, logs);
  REQUIRE(group_a.size() == 4);
  int64_t a_last = 0;
  REQUIRE(ParseTimestamp(group_a.front()["time"].get<std::string>(), &a_last));
  // Group B starts strictly after A's last millisecond (the server shares this clock).
  while (SystemClock().NowMillis() <= a_last + 1) std::this_thread::yield();
  REQUIRE(CheckReason(server, token, "company", "delete") == "NO_MATCHING_ALLOW");
  REQUIRE(CheckReason(server, token, "invoice", "view") == "NO_MATCHING_ALLOW");
  REQUIRE(CheckReason(server, token, "company", "view") == "ALLOW_RULE");
  REQUIRE(CheckReason(server, other_token, "company", "view") == "ALLOW_RULE");
  const std::vector<json> all = AllPages(server, session, logs);
  REQUIRE(all.size() == 7);
  const std::string b_first = all[2]["time"].get<std::string>();  // newest first: B is all[0..2]
  REQUIRE(b_first > group_a.front()["time"].get<std::string>());

  auto count = [&](const std::string& query) {
    return AllPages(server, session, logs + "?" + query).size();
  };
  CHECK(count("allowed=true") == 4);
  CHECK(count("allowed=false") == 3);
  CHECK(count("model=company") == 5);
  CHECK(count("model=company&allowed=false") == 2);
  CHECK(count("model=company&action=view") == 3);
  CHECK(count("action=view&allowed=true") == 4);
  CHECK(count("model=invoice&allowed=true") == 0);
  CHECK(count("since=" + b_first) == 3);
  CHECK(count("until=" + b_first) == 4);
  CHECK(count("since=" + b_first + "&model=company") == 2);
  CHECK(count("since=" + b_first + "&model=company&allowed=true&action=view") == 1);
  CHECK(count("until=" + b_first + "&allowed=false") == 1);
  for (const auto& row : AllPages(server, session, logs + "?model=company&allowed=false")) {
    CHECK(row["model"] == "company");
    CHECK(row["allowed"] == false);
    CHECK(row["principal"]["id"] == csm.id);
  }
  // Paging within a filter.
  CHECK(AllPages(server, session, logs + "?allowed=true", 1).size() == 4);

  for (const std::string bad : {"limit=5000", "limit=0", "limit=x", "allowed=maybe", "since=yesterday", "cursor=zzz"}) {
    Reply r = server.Get(logs + "?" + bad, session);
    INFO(bad << " -> " << r.body);
    CHECK(r.status == 400);
  }
  CHECK(server.Get(logs + "?limit=1000", session).status == 200);
  CHECK(server.Get("/v1/decisions?limit=5000", session).status == 400);
  CHECK(server.Get("/v1/service-accounts/nobody/logs", session).status == 404);
  CHECK(server.Get(logs).status == 401);

  // Across the tenant: both accounts, newest first.
  std::vector<json> tenant = AllPages(server, session, "/v1/decisions");
  REQUIRE(tenant.size() == 8);
  CHECK(tenant[0]["principal"]["id"] == other.id);
  CHECK(AllPages(server, session, "/v1/decisions?principal_id=" + other.id).size() == 1);
  CHECK(AllPages(server, session, "/v1/decisions?allowed=true&model=company").size() == 4);
  CHECK(AllPages(server, session, "/v1/decisions", 3).size() == 8);
  CHECK(DecisionRowCount(server) == 8);

  // A deleted account's history stays readable by its id.
  REQUIRE(server.Delete("/v1/service-accounts/" + csm.id, session).status == 204);
  CHECK(AllPages(server, session, logs).size() == 7);
}

TEST_CASE("history: retention keeps the newest rows, pruned in the background while checks go on", "[check]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path(), .env = {{"WARDEN_RETENTION_ROWS", "10"}}});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "retained", "role", "viewer");
  const std::string token = CreateToken(server, session, acct.name).token;
  std::vector<std::string> issued;  // oldest first
  for (int i = 0; i < 30; ++i) {
    Reply r = Check(server, token, "company", "view");
    REQUIRE(r.status == 200);
    issued.push_back(r.json["decision_id"].get<std::string>());
  }
  REQUIRE(AllPages(server, session, "/v1/decisions").size() == 30);

  // The maintenance loop prunes every ~10 s: poll, checking that checks keep being answered.
  std::vector<json> rows;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  for (;;) {
    rows = AllPages(server, session, "/v1/decisions");
    if (DecisionIds(rows).back() != issued.front()) break;  // the oldest is gone: pruned
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    Reply r = Check(server, token, "company", "view");
    REQUIRE(r.status == 200);
    REQUIRE(r.json["allowed"] == true);
    issued.push_back(r.json["decision_id"].get<std::string>());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  // Exactly the newest rows remain: 10 at the prune, plus at most the one check that may
  // have committed in the same instant as the prune.
  std::vector<std::string> kept = DecisionIds(rows);
  INFO("kept " << kept.size() << " of " << issued.size());
  CHECK(kept.size() >= 10);
  CHECK(kept.size() <= 11);
  std::vector<std::string> newest(issued.rbegin(), issued.rbegin() + static_cast<long>(kept.size()));
  CHECK(kept == newest);
  auto pruned = MetricValue(server.Get("/metrics").body, "warden_decision_log_pruned_total");
  REQUIRE(pruned.has_value());
  CHECK(*pruned == static_cast<double>(issued.size() - kept.size()));
  CHECK(CheckReason(server, token, "company", "view") == "ALLOW_RULE");
}

}  // namespace
}  // namespace warden::testing
