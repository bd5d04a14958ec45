// The decision log (group commit, filters, paging under concurrent inserts, pruning) and
// concurrent use of the whole store from several threads.
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/store/store_test_util.h"

namespace warden::store {
namespace {

using testing::MakeAccount;
using testing::MakeDecision;
using testing::MakeToken;
using testing::QueryAll;
using testing::StoreFixture;

std::vector<int64_t> Seqs(const std::vector<DecisionRow>& rows) {
  std::vector<int64_t> out;
  for (const auto& r : rows) out.push_back(r.seq);
  return out;
}

TEST_CASE("AppendDecisions stores a batch and fills seq in commit order", "[store][conformance][decisions]") {
  StoreFixture f;
  DecisionRow full = MakeDecision("sa-1", true);
  full.id = "01HZZZZZZZZZZZZZZZZZZZZZZZ";
  full.time = 123456;
  full.eval_error = "attr missing";
  full.caller_id = "sa-pep";  // an AuthZEN evaluation: the subject decided, the PEP's account asked
  full.caller_name = "gateway";
  std::vector<DecisionRow> rows = {full, MakeDecision("sa-1", false), MakeDecision("sa-2", true)};
  REQUIRE(f.store->AppendDecisions(&rows).ok());
  CHECK(rows[0].seq > 0);
  CHECK(rows[1].seq == rows[0].seq + 1);
  CHECK(rows[2].seq == rows[1].seq + 1);
  CHECK(rows[1].time == f.clock.NowMillis());  // filled when 0

  std::vector<DecisionRow> empty;
  REQUIRE(f.store->AppendDecisions(&empty).ok());

  DecisionQuery q;
  q.tenant_id = kDefaultTenantId;
  auto all = QueryAll(*f.store, q);
  REQUIRE(all.size() == 3);
  const DecisionRow& got = all[2];  // oldest last
  CHECK(got.seq == rows[0].seq);
  CHECK(got.id == full.id);
  CHECK(got.time == 123456);
  CHECK(got.tenant_id == kDefaultTenantId);
  CHECK(got.principal_type == "service_account");
  CHECK(got.principal_id == "sa-1");
  CHECK(got.principal_name == "name-sa-1");
  CHECK(got.token_id == "tok0000001");
  CHECK(got.model == "invoice");
  CHECK(got.action == "view");
  CHECK(got.resource_id == "r1");
  CHECK(got.allowed);
  CHECK(got.reason == "ALLOWED");
  CHECK(got.rule == "rule-1");
  CHECK(got.eval_error == "attr missing");
  CHECK(got.policy_revision == "rev1");
  CHECK(got.client_addr == "127.0.0.1");
  CHECK(got.method == "GET");
  CHECK(got.path == "/x");
  CHECK(got.request_id == "req");
  CHECK(got.latency_us == 42);
  CHECK(got.caller_id == "sa-pep");
  CHECK(got.caller_name == "gateway");
  CHECK(all[1].caller_id.empty());
  CHECK(all[1].id.size() == 26);  // assigned ULID
  CHECK(f.store->CountDecisions(kDefaultTenantId, "").value() == 3);
  CHECK(f.store->CountDecisions(kDefaultTenantId, "sa-1").value() == 2);
  CHECK(f.store->CountDecisions("other", "").value() == 0);
}

TEST_CASE("Decision queries combine filters", "[store][conformance][decisions]") {
  StoreFixture f;
  // 24 rows: principal p0/p1, allowed alternating, models invoice/company, actions view/delete,
  // times 1000 + 10*i.
  std::vector<DecisionRow> rows;
  for (int i = 0; i < 24; ++i) {
    DecisionRow d = MakeDecision("p" + std::to_string(i % 2), i % 3 != 0,
                                 i % 4 < 2 ? "invoice" : "company", i % 6 < 3 ? "view" : "delete");
    d.time = 1000 + 10 * i;
    d.request_id = std::to_string(i);
    rows.push_back(d);
  }
  DecisionRow other_tenant = MakeDecision("p0", true);
  other_tenant.tenant_id = "other";
  rows.push_back(other_tenant);
  REQUIRE(f.store->AppendDecisions(&rows).ok());

  struct Case {
    std::string name;
    DecisionQuery q;
  };
  auto q = [](std::string principal, std::optional<bool> allowed, std::string model,
              std::string action, int64_t since, int64_t until) {
    DecisionQuery x;
    x.tenant_id = kDefaultTenantId;
    x.principal_id = principal;
    x.allowed = allowed;
    x.model = model;
    x.action = action;
    x.since = since;
    x.until = until;
    return x;
  };
  auto c = GENERATE_COPY(
      Case{"all", q("", {}, "", "", 0, 0)}, Case{"principal", q("p1", {}, "", "", 0, 0)},
      Case{"denied", q("", false, "", "", 0, 0)}, Case{"allowed", q("", true, "", "", 0, 0)},
      Case{"model", q("", {}, "company", "", 0, 0)}, Case{"action", q("", {}, "", "delete", 0, 0)},
      Case{"since", q("", {}, "", "", 1100, 0)}, Case{"until", q("", {}, "", "", 0, 1100)},
      Case{"window", q("", {}, "", "", 1050, 1150)},
      Case{"everything", q("p0", true, "invoice", "view", 1000, 1200)},
      Case{"nothing", q("p9", {}, "", "", 0, 0)});
  // The expected rows, computed independently from the inputs.
  std::vector<std::string> want;
  for (int i = 23; i >= 0; --i) {
    const DecisionRow& d = rows[i];
    const DecisionQuery& x = c.q;
    if (!x.principal_id.empty() && d.principal_id != x.principal_id) continue;
    if (x.allowed && d.allowed != *x.allowed) continue;
    if (!x.model.empty() && d.model != x.model) continue;
    if (!x.action.empty() && d.action != x.action) continue;
    if (x.since > 0 && d.time < x.since) continue;
    if (x.until > 0 && d.time >= x.until) continue;
    want.push_back(d.request_id);
  }
  for (int limit : {1, 5, 100}) {
    DecisionQuery x = c.q;
    x.limit = limit;
    std::vector<std::string> got;
    for (const auto& d : QueryAll(*f.store, x)) got.push_back(d.request_id);
    INFO(c.name << " limit " << limit);
    CHECK(got == want);
  }
  if (c.name == "all") CHECK(want.size() == 24);
  if (c.name == "nothing") CHECK(want.empty());
}

TEST_CASE("Listings merge the chunks of many principals and moves in seq order",
          "[store][conformance][decisions]") {
  StoreFixture f;
  // Five principals, interleaved, moved in passes of varying size: chunks of different
  // principals overlap in seq, and the busy principal's rows span several full chunks.
  std::vector<DecisionRow> all;
  int n = 0;
  for (int pass = 0; pass < 6; ++pass) {
    const int rows_in_pass = pass == 2 ? 1500 : 37 + pass * 11;
    for (int i = 0; i < rows_in_pass; ++i, ++n) {
      const std::string principal = n % 3 == 0 ? "busy" : "p" + std::to_string(n % 5);
      std::vector<DecisionRow> one(1, MakeDecision(principal, n % 2 == 0, n % 7 == 0 ? "company" : "invoice"));
      REQUIRE(f.store->AppendDecisions(&one).ok());
      all.push_back(one[0]);
    }
    f.Flush();
  }
  const auto expect = [&](const DecisionQuery& q) {
    std::vector<int64_t> want;
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      if (!q.principal_id.empty() && it->principal_id != q.principal_id) continue;
      if (q.allowed && it->allowed != *q.allowed) continue;
      if (!q.model.empty() && it->model != q.model) continue;
      want.push_back(it->seq);
    }
    return want;
  };
  for (int limit : {1, 7, 50, 1000}) {
    for (const char* principal : {"", "busy", "p1"}) {
      if (limit == 1 && std::string(principal) != "p1") continue;  // ~1,700 queries otherwise
      for (int filter = 0; filter < 3; ++filter) {
        DecisionQuery q;
        q.tenant_id = kDefaultTenantId;
        q.principal_id = principal;
        q.limit = limit;
        if (filter == 1) q.allowed = true;
        if (filter == 2) q.model = "company";
        INFO("limit " << limit << " principal '" << principal << "' filter " << filter);
        const auto want = expect(q);
        REQUIRE(!want.empty());
        CHECK(Seqs(QueryAll(*f.store, q)) == want);
      }
    }
  }
  CHECK(f.store->CountDecisions(kDefaultTenantId, "").value() == n);
  CHECK(f.store->CountDecisions(kDefaultTenantId, "busy").value() == (n + 2) / 3);
}

TEST_CASE("Decision query errors", "[store][conformance][decisions]") {
  StoreFixture f;
  DecisionQuery q;
  CHECK(f.store->Query(q).status().code() == StatusCode::kInvalidArgument);  // no tenant
  q.tenant_id = kDefaultTenantId;
  for (const char* bad : {"x", "c", "c-1", "c0", "c12x", "12", "c99999999999999999999999"}) {
    q.cursor = bad;
    INFO(bad);
    CHECK(f.store->Query(q).status().code() == StatusCode::kInvalidArgument);
  }
  q.cursor.clear();
  q.limit = 1'000'000;  // capped, not an error
  CHECK(f.store->Query(q).ok());
}

TEST_CASE("Paging never repeats or skips a row while rows are inserted", "[store][conformance][decisions]") {
  StoreFixture f;
  for (int i = 0; i < 10; ++i) {
    std::vector<DecisionRow> rows(50, MakeDecision(i % 2 ? "p1" : "p0", true));
    REQUIRE(f.store->AppendDecisions(&rows).ok());
  }
  std::atomic<bool> stop{false};
  std::atomic<int> inserted{0};
  std::atomic<bool> finished{false};
  std::thread writer([&] {
    // At most 4,000 rows: a page costs a chunk decode or two, and in a -O0 sanitizer build
    // an unbounded writer outran the pager, each walk longer than the last.
    while (!stop.load() && inserted.load() < 4000) {
      std::vector<DecisionRow> rows(20, MakeDecision("p0", true));
      rows[5].principal_id = "p1";
      if (!f.store->AppendDecisions(&rows).ok()) break;
      inserted += 20;
      // A journal append takes microseconds; at full speed the table would grow by millions
      // of rows while the pager walks it. A steady stream is what this test is about.
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    finished = true;
  });
  // The writer is under way before the first page (on a busy host the walks could end before
  // it ran at all).
  while (inserted.load() < 100 && !finished.load()) std::this_thread::yield();
  for (const std::string principal : {"", "p0"}) {
    DecisionQuery q;
    q.tenant_id = kDefaultTenantId;
    q.principal_id = principal;
    q.limit = 7;
    std::vector<int64_t> seen;
    int64_t first_max = 0;
    while (true) {
      auto page = f.store->Query(q);
      REQUIRE(page.ok());
      if (first_max == 0 && !page->items.empty()) first_max = page->items[0].seq;
      for (const auto& d : page->items) seen.push_back(d.seq);
      if (page->next_cursor.empty()) break;
      q.cursor = page->next_cursor;
      std::this_thread::yield();  // give the writer a chance between pages
    }
    // Strictly decreasing: no repeats, newest first.
    for (size_t i = 1; i < seen.size(); ++i) REQUIRE(seen[i] < seen[i - 1]);
    // No skips: every matching row up to the first row seen is there.
    DecisionQuery all;
    all.tenant_id = kDefaultTenantId;
    all.principal_id = principal;
    all.limit = kMaxPageLimit;
    std::vector<int64_t> expected;
    for (const auto& d : QueryAll(*f.store, all)) {
      if (d.seq <= first_max) expected.push_back(d.seq);
    }
    CHECK(seen == expected);
  }
  stop = true;
  writer.join();
  CHECK(inserted.load() > 0);
}

TEST_CASE("Prune deletes the oldest rows in bounded batches", "[store][conformance][decisions]") {
  StoreFixture f;
  const int64_t t0 = f.clock.NowMillis();
  for (int i = 0; i < 10; ++i) {
    std::vector<DecisionRow> rows(10, MakeDecision("p", true));
    for (auto& r : rows) r.time = t0 + i * 1000;  // ten rows per second, 10 seconds
    REQUIRE(f.store->AppendDecisions(&rows).ok());
  }
  DecisionQuery all;
  all.tenant_id = kDefaultTenantId;
  all.limit = kMaxPageLimit;
  const auto before = Seqs(QueryAll(*f.store, all));
  REQUIRE(before.size() == 100);

  SECTION("by row count") {
    CHECK(f.store->Prune({.max_rows_per_principal = 70}, 25).value() == 25);
    CHECK(f.store->Prune({.max_rows_per_principal = 70}, 25).value() == 5);
    CHECK(f.store->Prune({.max_rows_per_principal = 70}, 25).value() == 0);
    const auto after = Seqs(QueryAll(*f.store, all));
    CHECK(after == std::vector<int64_t>(before.begin(), before.begin() + 70));  // newest 70
  }
  SECTION("by age") {
    f.clock.Set(t0 + 10'000);
    // Older than 4.5 s: rows of seconds 0..5 (60 rows).
    CHECK(f.store->Prune({.max_age_ms = 4500}, 40).value() == 40);
    CHECK(f.store->Prune({.max_age_ms = 4500}, 40).value() == 20);
    CHECK(f.store->Prune({.max_age_ms = 4500}, 40).value() == 0);
    const auto rows = QueryAll(*f.store, all);
    REQUIRE(rows.size() == 40);
    for (const auto& r : rows) CHECK(r.time >= t0 + 6000);
  }
  SECTION("both limits, and nothing to do") {
    f.clock.Set(t0 + 10'000);
    CHECK(f.store->Prune({}, 100).value() == 0);
    CHECK(f.store->Prune({.max_age_ms = 100'000, .max_rows_per_principal = 1000}, 100).value() == 0);
    // The age limit removes seconds 0-1, the row count then seconds 2-4.
    CHECK(f.store->Prune({.max_age_ms = 8500, .max_rows_per_principal = 50}, 1000).value() == 50);
    CHECK(f.store->CountDecisions(kDefaultTenantId, "").value() == 50);
    // Now the age limit removes seconds 5-7.
    CHECK(f.store->Prune({.max_age_ms = 2500, .max_rows_per_principal = 50}, 1000).value() == 30);
    CHECK(f.store->CountDecisions(kDefaultTenantId, "").value() == 20);
  }
  SECTION("bad batch size") {
    CHECK(f.store->Prune({.max_age_ms = 1, .max_rows_per_principal = 1}, 0).status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("Prune: each principal has its own row budget, rows without a principal theirs", "[store][conformance][decisions]") {
  StoreFixture f;
  // A real account's history, then a flood of rows from invalid credentials (no principal)
  // and a busy account, interleaved in many small appends as a server writes them.
  for (int i = 0; i < 50; ++i) {
    std::vector<DecisionRow> rows(4, MakeDecision("quiet", true));
    REQUIRE(f.store->AppendDecisions(&rows).ok());
  }
  for (int i = 0; i < 300; ++i) {
    std::vector<DecisionRow> rows = {MakeDecision("", false), MakeDecision("busy", true), MakeDecision("", false)};
    REQUIRE(f.store->AppendDecisions(&rows).ok());
  }
  f.Flush();
  const Retention retention{.max_rows_per_principal = 250, .max_unauthenticated_rows = 100};
  int64_t pruned = 0;
  for (int i = 0; i < 100; ++i) {
    auto n = f.store->Prune(retention, 64);
    REQUIRE(n.ok());
    CHECK(*n <= 64);
    pruned += *n;
    if (*n == 0) break;
  }
  CHECK(pruned == (600 - 100) + (300 - 250));
  CHECK(f.store->CountDecisions(kDefaultTenantId, "quiet").value() == 200);  // within its budget: untouched
  CHECK(f.store->CountDecisions(kDefaultTenantId, "busy").value() == 250);
  CHECK(f.store->CountDecisions(kDefaultTenantId, "").value() == 200 + 250 + 100);
  // What is kept of each is its newest rows.
  DecisionQuery busy;
  busy.tenant_id = kDefaultTenantId;
  busy.principal_id = "busy";
  busy.limit = kMaxPageLimit;
  const auto kept = Seqs(QueryAll(*f.store, busy));
  REQUIRE(kept.size() == 250);
  DecisionQuery all = busy;
  all.principal_id = "";
  int64_t newer_busy = 0;
  for (const auto& d : QueryAll(*f.store, all)) newer_busy += d.principal_id == "busy" && d.seq > kept.back();
  CHECK(newer_busy == 249);
  CHECK(f.store->Prune(retention, 64).value() == 0);
}

TEST_CASE("The store is safe to use from many threads at once", "[store][conformance][concurrency]") {
  StoreFixture f;
  constexpr int kThreads = 6;
  constexpr int kRounds = 40;
  auto base = f.store->CreateAccount(MakeAccount("base"));
  REQUIRE(base.ok());
  REQUIRE(f.store->CreateToken(MakeToken("BaseToken1", base->id)).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto fail = [&](const Status& st) {
        if (!st.ok()) {
          ++failures;
          UNSCOPED_INFO(st.ToString());
        }
      };
      for (int i = 0; i < kRounds; ++i) {
        const std::string tag = std::to_string(t) + "-" + std::to_string(i);
        switch (t % 3) {
          case 0: {  // admin writer
            AuditEntry audit;
            audit.actor_type = kActorUser;
            audit.actor_id = "u";
            audit.action = "service_account.created";
            audit.target_type = "service_account";
            auto a = f.store->CreateAccount(MakeAccount("acct-" + tag), &audit);
            fail(a.status());
            if (a.ok()) {
              fail(f.store->CreateToken(MakeToken("T" + std::string(9 - tag.size(), '0') + tag,
                                                  a->id)));
              fail(f.store->SetPolicy(kDefaultTenantId, a->id, "p", kActorUser, "u").status());
            }
            break;
          }
          case 1: {  // decision log writer
            std::vector<DecisionRow> rows(25, MakeDecision("p" + std::to_string(t), i % 2 == 0));
            fail(f.store->AppendDecisions(&rows));
            break;
          }
          default: {  // readers on the hot path and the console
            fail(f.store->LookupToken("BaseToken1").status());
            fail(f.store->ListAccounts(kDefaultTenantId, {}).status());
            DecisionQuery q;
            q.tenant_id = kDefaultTenantId;
            q.limit = 10;
            fail(f.store->Query(q).status());
            fail(f.store->List(testing::AuditFor()).status());
            if (i % 10 == 0) fail(f.Checkpoint());
            if (i % 10 == 5) fail(f.store->Ping());
            break;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures.load() == 0);
  const int writers = (kThreads + 2) / 3;
  CHECK(f.store->CountDecisions(kDefaultTenantId, "").value() == writers * kRounds * 25);
  CHECK(f.store->CountTokens(kDefaultTenantId).value() == 1 + writers * kRounds);
  auto log = f.store->List(AuditQuery{kDefaultTenantId, "", "", kMaxPageLimit, ""});
  CHECK(static_cast<int>(log->items.size()) == writers * kRounds);
}

TEST_CASE("Committed decisions survive closing and reopening the store", "[store][conformance][decisions]") {
  StoreFixture f;
  std::vector<DecisionRow> rows(100, MakeDecision("p", true));
  REQUIRE(f.store->AppendDecisions(&rows).ok());
  f.Reopen();
  CHECK(f.store->CountDecisions(kDefaultTenantId, "p").value() == 100);
}

}  // namespace
}  // namespace warden::store
