// Service accounts, policy versions, tokens and the audit log of the SQLite store.
#include <cstdio>
#include <catch2/catch.hpp>

#include "tests/store/store_test_util.h"

namespace warden::store {
namespace {

using testing::MakeAccount;
using testing::MakeDecision;
using testing::MakeToken;
using testing::StoreFixture;

AuditEntry Audit(const std::string& action, const std::string& target_type) {
  AuditEntry e;
  e.actor_type = kActorUser;
  e.actor_id = "u-admin";
  e.action = action;
  e.target_type = target_type;
  e.details = {{"k", "v"}};
  return e;
}

TEST_CASE("CreateAccount stores the account and its policy as version 1", "[store][conformance][account]") {
  StoreFixture f;
  AuditEntry audit = Audit("service_account.created", "service_account");
  auto a = f.store->CreateAccount(MakeAccount("crm-sync", "rules: [a]\n"), &audit);
  REQUIRE(a.ok());
  CHECK(a->id.size() == 26);
  CHECK(a->policy_version == 1);
  CHECK(a->created_at == f.clock.NowMillis());

  auto got = f.store->GetAccount(kDefaultTenantId, a->id);
  REQUIRE(got.ok());
  CHECK(got->name == "crm-sync");
  CHECK(got->description == "desc of crm-sync");
  CHECK(got->enabled);
  CHECK(got->policy_yaml == "rules: [a]\n");
  CHECK(got->policy_version == 1);
  CHECK(got->created_by_type == kActorUser);
  CHECK(got->created_by_id == "u-admin");
  CHECK(got->deleted_at == 0);
  CHECK(got->token_count == 0);

  auto versions = f.store->ListPolicyVersions(kDefaultTenantId, a->id);
  REQUIRE(versions.ok());
  REQUIRE(versions->size() == 1);
  CHECK((*versions)[0].version == 1);
  CHECK((*versions)[0].policy_yaml == "rules: [a]\n");
  CHECK((*versions)[0].actor_id == "u-admin");

  auto log = f.store->List(testing::AuditFor());
  REQUIRE(log.ok());
  REQUIRE(log->items.size() == 1);
  const AuditEntry& e = log->items[0];
  CHECK(e.action == "service_account.created");
  CHECK(e.target_id == a->id);  // filled by the store on create
  CHECK(e.target_name == "crm-sync");
  CHECK(e.tenant_id == kDefaultTenantId);
  CHECK(e.time == f.clock.NowMillis());
  CHECK(e.details == nlohmann::json{{"k", "v"}});
  CHECK(e.seq > 0);
}

TEST_CASE("Account names are unique per tenant among live accounts", "[store][conformance][account]") {
  StoreFixture f;
  AuditEntry audit = Audit("service_account.created", "service_account");
  auto a = f.store->CreateAccount(MakeAccount("crm-sync"), &audit);
  REQUIRE(a.ok());
  auto dup = f.store->CreateAccount(MakeAccount("CRM-Sync"), &audit);
  CHECK(dup.status().code() == StatusCode::kAlreadyExists);
  CHECK(dup.status().field() == "name");
  // The failed create wrote neither the account nor its audit row.
  CHECK(f.store->List(testing::AuditFor())->items.size() == 1);
  CHECK(f.store->ListAccounts(kDefaultTenantId, {})->items.size() == 1);

  struct BadCase {
    std::string name;
    std::string tenant;
    StatusCode want;
  };
  auto c = GENERATE(BadCase{"", kDefaultTenantId, StatusCode::kInvalidArgument},
                    BadCase{"x", "", StatusCode::kInvalidArgument},
                    BadCase{"x", "no-such-tenant", StatusCode::kNotFound});
  ServiceAccount bad = MakeAccount(c.name);
  bad.tenant_id = c.tenant;
  CHECK(f.store->CreateAccount(bad).status().code() == c.want);
}

TEST_CASE("GetAccount and GetAccountByName", "[store][conformance][account]") {
  StoreFixture f;
  auto a = f.store->CreateAccount(MakeAccount("billing"));
  REQUIRE(a.ok());
  CHECK(f.store->GetAccountByName(kDefaultTenantId, "billing")->id == a->id);
  CHECK(f.store->GetAccountByName(kDefaultTenantId, "BILLING")->id == a->id);
  CHECK(f.store->GetAccountByName(kDefaultTenantId, "nope").status().code() ==
        StatusCode::kNotFound);
  CHECK(f.store->GetAccount(kDefaultTenantId, "nope").status().code() == StatusCode::kNotFound);
  CHECK(f.store->GetAccount("other-tenant", a->id).status().code() == StatusCode::kNotFound);
}

TEST_CASE("UpdateAccount changes name, description and enabled", "[store][conformance][account]") {
  StoreFixture f;
  auto a = f.store->CreateAccount(MakeAccount("one"));
  auto b = f.store->CreateAccount(MakeAccount("two"));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  f.clock.Advance(10);

  AccountUpdate disable;
  disable.enabled = false;
  AuditEntry audit = Audit("service_account.disabled", "service_account");
  auto updated = f.store->UpdateAccount(kDefaultTenantId, a->id, disable, &audit);
  REQUIRE(updated.ok());
  CHECK_FALSE(updated->enabled);
  CHECK(updated->name == "one");
  CHECK(updated->updated_at == a->created_at + 10);
  CHECK_FALSE(f.store->GetAccount(kDefaultTenantId, a->id)->enabled);

  AccountUpdate rename;
  rename.name = "uno";
  rename.description = "first";
  REQUIRE(f.store->UpdateAccount(kDefaultTenantId, a->id, rename).ok());
  auto got = f.store->GetAccount(kDefaultTenantId, a->id);
  CHECK(got->name == "uno");
  CHECK(got->description == "first");
  CHECK_FALSE(got->enabled);
  CHECK(f.store->GetAccountByName(kDefaultTenantId, "one").status().code() ==
        StatusCode::kNotFound);

  AccountUpdate clash;
  clash.name = "two";
  CHECK(f.store->UpdateAccount(kDefaultTenantId, a->id, clash, &audit).status().code() ==
        StatusCode::kAlreadyExists);
  CHECK(f.store->UpdateAccount(kDefaultTenantId, "nope", clash).status().code() ==
        StatusCode::kNotFound);
  AccountUpdate empty_name;
  empty_name.name = "";
  CHECK(f.store->UpdateAccount(kDefaultTenantId, a->id, empty_name).status().code() ==
        StatusCode::kInvalidArgument);
  // Only the successful update with an audit entry wrote one.
  auto log = f.store->List(testing::AuditFor());
  REQUIRE(log->items.size() == 1);
  CHECK(log->items[0].target_name == "one");
}

TEST_CASE("SoftDeleteAccount frees the name, drops tokens, keeps logs", "[store][conformance][account]") {
  StoreFixture f;
  auto a = f.store->CreateAccount(MakeAccount("pipeline"));
  REQUIRE(a.ok());
  REQUIRE(f.store->CreateToken(MakeToken("tokAAAAAA1", a->id)).ok());
  REQUIRE(f.store->CreateToken(MakeToken("tokAAAAAA2", a->id)).ok());
  std::vector<DecisionRow> rows = {MakeDecision(a->id, true), MakeDecision(a->id, false)};
  REQUIRE(f.store->AppendDecisions(&rows).ok());
  REQUIRE(f.store->SetPolicy(kDefaultTenantId, a->id, "v2", kActorUser, "u").ok());
  f.clock.Advance(100);

  AuditEntry audit = Audit("service_account.deleted", "service_account");
  REQUIRE(f.store->SoftDeleteAccount(kDefaultTenantId, a->id, &audit).ok());

  CHECK(f.store->GetAccount(kDefaultTenantId, a->id).status().code() == StatusCode::kNotFound);
  CHECK(f.store->GetAccountByName(kDefaultTenantId, "pipeline").status().code() ==
        StatusCode::kNotFound);
  auto deleted = f.store->GetAccount(kDefaultTenantId, a->id, /*include_deleted=*/true);
  REQUIRE(deleted.ok());
  CHECK(deleted->deleted_at == f.clock.NowMillis());
  CHECK(deleted->token_count == 0);
  CHECK(f.store->LookupToken("tokAAAAAA1").status().code() == StatusCode::kNotFound);
  CHECK(f.store->CountTokens(kDefaultTenantId).value() == 0);
  CHECK(f.store->ListTokens(kDefaultTenantId, a->id).status().code() == StatusCode::kNotFound);
  CHECK(f.store->ListAccounts(kDefaultTenantId, {})->items.empty());
  CHECK(f.store->SoftDeleteAccount(kDefaultTenantId, a->id).code() == StatusCode::kNotFound);
  CHECK(f.store->SetPolicy(kDefaultTenantId, a->id, "v3", kActorUser, "u").status().code() ==
        StatusCode::kNotFound);
  CHECK(f.store->UpdateAccount(kDefaultTenantId, a->id, AccountUpdate{}).status().code() ==
        StatusCode::kNotFound);

  // History stays readable by id.
  DecisionQuery q;
  q.tenant_id = kDefaultTenantId;
  q.principal_id = a->id;
  auto history = f.store->Query(q);
  REQUIRE(history.ok());
  CHECK(history->items.size() == 2);
  CHECK(history->items[0].principal_name == "name-" + a->id);
  CHECK(f.store->ListPolicyVersions(kDefaultTenantId, a->id)->size() == 2);
  AuditQuery aq = testing::AuditFor(a->id);
  auto audits = f.store->List(aq);
  REQUIRE(audits->items.size() == 1);
  CHECK(audits->items[0].target_name == "pipeline");

  // The name is free again; the new account is a different one.
  auto again = f.store->CreateAccount(MakeAccount("pipeline"));
  REQUIRE(again.ok());
  CHECK(again->id != a->id);
  CHECK(f.store->GetAccountByName(kDefaultTenantId, "pipeline")->id == again->id);
  CHECK(f.store->GetAccountByName(kDefaultTenantId, "pipeline", true)->id == again->id);
  // A second deletion of the same name also works (no unique clash among deleted rows).
  REQUIRE(f.store->SoftDeleteAccount(kDefaultTenantId, again->id).ok());
  auto latest_deleted = f.store->GetAccountByName(kDefaultTenantId, "pipeline", true);
  REQUIRE(latest_deleted.ok());
  CHECK(latest_deleted->id == again->id);
}

TEST_CASE("SetPolicy versions the policy, with optimistic concurrency", "[store][conformance][account]") {
  StoreFixture f;
  auto a = f.store->CreateAccount(MakeAccount("acct", "p1"));
  REQUIRE(a.ok());
  f.clock.Advance(1);
  AuditEntry audit = Audit("service_account.permissions_changed", "service_account");
  auto v2 = f.store->SetPolicy(kDefaultTenantId, a->id, "p2", kActorServiceAccount, "sa-1", 1,
                               &audit);
  REQUIRE(v2.ok());
  CHECK(v2->version == 2);
  CHECK(v2->actor_type == kActorServiceAccount);
  auto got = f.store->GetAccount(kDefaultTenantId, a->id);
  CHECK(got->policy_yaml == "p2");
  CHECK(got->policy_version == 2);
  CHECK(got->updated_at == f.clock.NowMillis());

  // A stale expected version changes nothing and writes no audit row.
  auto stale = f.store->SetPolicy(kDefaultTenantId, a->id, "p-stale", kActorUser, "u", 1, &audit);
  CHECK(stale.status().code() == StatusCode::kFailedPrecondition);
  CHECK(f.store->GetAccount(kDefaultTenantId, a->id)->policy_yaml == "p2");
  CHECK(f.store->List(testing::AuditFor())->items.size() == 1);

  auto v3 = f.store->SetPolicy(kDefaultTenantId, a->id, "p3", kActorUser, "u");
  REQUIRE(v3.ok());
  CHECK(v3->version == 3);

  auto versions = f.store->ListPolicyVersions(kDefaultTenantId, a->id);
  REQUIRE(versions.ok());
  REQUIRE(versions->size() == 3);
  CHECK((*versions)[0].version == 3);
  CHECK((*versions)[0].policy_yaml == "p3");
  CHECK((*versions)[1].policy_yaml == "p2");
  CHECK((*versions)[1].actor_id == "sa-1");
  CHECK((*versions)[2].policy_yaml == "p1");
  CHECK(f.store->ListPolicyVersions(kDefaultTenantId, "nope").status().code() ==
        StatusCode::kNotFound);
  CHECK(f.store->SetPolicy(kDefaultTenantId, "nope", "x", kActorUser, "u").status().code() ==
        StatusCode::kNotFound);
}

TEST_CASE("ListAccounts pages newest first with token counts and last use", "[store][conformance][account]") {
  StoreFixture f;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto a = f.store->CreateAccount(MakeAccount("acct-" + std::to_string(i)));
    REQUIRE(a.ok());
    ids.push_back(a->id);
  }
  REQUIRE(f.store->CreateToken(MakeToken("tok0000001", ids[3])).ok());
  REQUIRE(f.store->CreateToken(MakeToken("tok0000002", ids[3])).ok());
  REQUIRE(f.store->TouchTokensLastUsed({{"tok0000001", 5000}, {"tok0000002", 7000}}).ok());
  REQUIRE(f.store->SoftDeleteAccount(kDefaultTenantId, ids[1]).ok());

  ListOptions opt;
  opt.limit = 2;
  std::vector<ServiceAccount> all;
  while (true) {
    auto page = f.store->ListAccounts(kDefaultTenantId, opt);
    REQUIRE(page.ok());
    CHECK(page->items.size() <= 2);
    all.insert(all.end(), page->items.begin(), page->items.end());
    if (page->next_cursor.empty()) break;
    opt.cursor = page->next_cursor;
  }
  REQUIRE(all.size() == 4);
  CHECK(all[0].name == "acct-4");
  CHECK(all[1].name == "acct-3");
  CHECK(all[1].token_count == 2);
  CHECK(all[1].last_used_at == 7000);
  CHECK(all[2].name == "acct-2");
  CHECK(all[2].token_count == 0);
  CHECK(all[2].last_used_at == 0);
  CHECK(all[3].name == "acct-0");
}

TEST_CASE("Tokens: create, list, lookup, delete one, touch", "[store][conformance][token]") {
  StoreFixture f;
  auto a = f.store->CreateAccount(MakeAccount("a"));
  auto b = f.store->CreateAccount(MakeAccount("b"));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  AuditEntry audit = Audit("token.created", "token");
  ApiTokenRecord t1 = MakeToken("AbCdEfGhI1", a->id, "first");
  t1.expires_at = 99;
  t1.secret_hash = std::string("\x00\x01\xff", 3) + std::string(29, 'z');
  REQUIRE(f.store->CreateToken(t1, &audit).ok());
  f.clock.Advance(1);
  REQUIRE(f.store->CreateToken(MakeToken("AbCdEfGhI2", a->id, "second")).ok());
  REQUIRE(f.store->CreateToken(MakeToken("AbCdEfGhI3", b->id, "other")).ok());

  SECTION("errors") {
    CHECK(f.store->CreateToken(MakeToken("AbCdEfGhI1", a->id)).code() ==
          StatusCode::kAlreadyExists);
    CHECK(f.store->CreateToken(MakeToken("AbCdEfGhI9", "nope")).code() == StatusCode::kNotFound);
    ApiTokenRecord short_hash = MakeToken("AbCdEfGhI8", a->id);
    short_hash.secret_hash = "abc";
    CHECK(f.store->CreateToken(short_hash).code() == StatusCode::kInvalidArgument);
    CHECK(f.store->CreateToken(MakeToken("", a->id)).code() == StatusCode::kInvalidArgument);
  }
  SECTION("list is per account, oldest first, with every field") {
    auto list = f.store->ListTokens(kDefaultTenantId, a->id);
    REQUIRE(list.ok());
    REQUIRE(list->size() == 2);
    CHECK((*list)[0].id == "AbCdEfGhI1");
    CHECK((*list)[0].name == "first");
    CHECK((*list)[0].expires_at == 99);
    CHECK((*list)[0].secret_hash == t1.secret_hash);
    CHECK((*list)[0].display_prefix == t1.display_prefix);
    CHECK((*list)[0].created_by_id == "u1");
    CHECK((*list)[1].id == "AbCdEfGhI2");
    CHECK(f.store->CountTokens(kDefaultTenantId).value() == 3);
    CHECK(f.store->GetAccount(kDefaultTenantId, a->id)->token_count == 2);
  }
  SECTION("lookup joins the live account") {
    auto found = f.store->LookupToken("AbCdEfGhI1");
    REQUIRE(found.ok());
    CHECK(found->token.account_id == a->id);
    CHECK(found->token.secret_hash == t1.secret_hash);
    CHECK(found->account.id == a->id);
    CHECK(found->account.name == "a");
    CHECK(found->account.enabled);
    CHECK(found->account.policy_yaml == "rules: []\n");
    CHECK(f.store->LookupToken("ZZZZZZZZZZ").status().code() == StatusCode::kNotFound);
    // A disabled account is still returned: the caller decides (ACCOUNT_DISABLED).
    AccountUpdate off;
    off.enabled = false;
    REQUIRE(f.store->UpdateAccount(kDefaultTenantId, a->id, off).ok());
    auto disabled = f.store->LookupToken("AbCdEfGhI1");
    REQUIRE(disabled.ok());
    CHECK_FALSE(disabled->account.enabled);
  }
  SECTION("deleting one token leaves the others") {
    AuditEntry del = Audit("token.deleted", "token");
    CHECK(f.store->DeleteToken(kDefaultTenantId, b->id, "AbCdEfGhI1").code() ==
          StatusCode::kNotFound);  // wrong account
    REQUIRE(f.store->DeleteToken(kDefaultTenantId, a->id, "AbCdEfGhI1", &del).ok());
    CHECK(f.store->DeleteToken(kDefaultTenantId, a->id, "AbCdEfGhI1", &del).code() ==
          StatusCode::kNotFound);
    CHECK(f.store->LookupToken("AbCdEfGhI1").status().code() == StatusCode::kNotFound);
    CHECK(f.store->LookupToken("AbCdEfGhI2").ok());
    CHECK(f.store->LookupToken("AbCdEfGhI3").ok());
    auto list = f.store->ListTokens(kDefaultTenantId, a->id);
    REQUIRE(list->size() == 1);
    CHECK((*list)[0].id == "AbCdEfGhI2");
    auto log = f.store->List(testing::AuditFor("AbCdEfGhI1"));
    REQUIRE(log->items.size() == 2);
    CHECK(log->items[0].action == "token.deleted");
    CHECK(log->items[0].target_name == "first");
    CHECK(log->items[1].action == "token.created");
  }
  SECTION("last_used_at only moves forward; unknown ids are ignored") {
    REQUIRE(f.store->TouchTokensLastUsed({{"AbCdEfGhI1", 1000}, {"unknown000", 5}}).ok());
    REQUIRE(f.store->TouchTokensLastUsed({{"AbCdEfGhI1", 500}}).ok());
    CHECK(f.store->LookupToken("AbCdEfGhI1")->token.last_used_at == 1000);
    REQUIRE(f.store->TouchTokensLastUsed({}).ok());
  }
}

TEST_CASE("TouchTokensLastUsed writes every use of a batch larger than one transaction",
          "[store][conformance][account]") {
  StoreFixture f;
  auto a = f.store->CreateAccount(MakeAccount("many-tokens"));
  REQUIRE(a.ok());
  // More than the SQLite store's 512 updates a transaction, given in descending id order.
  constexpr int kTokens = 600;
  const auto id_of = [](int i) {
    char id[11];
    std::snprintf(id, sizeof id, "tk%08d", i);
    return std::string(id);
  };
  std::vector<std::pair<std::string, int64_t>> uses;
  for (int i = kTokens - 1; i >= 0; --i) {
    REQUIRE(f.store->CreateToken(MakeToken(id_of(i), a->id)).ok());
    uses.emplace_back(id_of(i), 1000 + i);
  }
  REQUIRE(f.store->TouchTokensLastUsed(uses).ok());
  for (int i : {0, 1, 511, 512, 513, kTokens - 1}) {
    INFO(id_of(i));
    CHECK(f.store->LookupToken(id_of(i))->token.last_used_at == 1000 + i);
  }
}

TEST_CASE("Audit log: append, filters and paging", "[store][conformance][audit]") {
  StoreFixture f;
  AuditEntry no_tenant = Audit("x.changed", "user");
  CHECK(f.store->Append(&no_tenant).code() == StatusCode::kInvalidArgument);
  AuditEntry no_action = Audit("", "user");
  no_action.tenant_id = kDefaultTenantId;
  CHECK(f.store->Append(&no_action).code() == StatusCode::kInvalidArgument);

  int64_t last_seq = 0;
  for (int i = 0; i < 6; ++i) {
    AuditEntry e = Audit("x.changed." + std::to_string(i), i % 2 == 0 ? "service_account" : "user");
    e.tenant_id = kDefaultTenantId;
    e.target_id = "t" + std::to_string(i % 3);
    REQUIRE(f.store->Append(&e).ok());
    CHECK(e.seq > last_seq);
    last_seq = e.seq;
    CHECK(e.id.size() == 26);
    CHECK(e.time == f.clock.NowMillis());
  }
  AuditEntry other = Audit("x.other_tenant", "user");
  other.tenant_id = "other";
  REQUIRE(f.store->Append(&other).ok());

  struct Case {
    std::string target_id;
    std::string target_type;
    std::vector<int> want;  // indexes of the actions, newest first
  };
  auto c = GENERATE(Case{"", "", {5, 4, 3, 2, 1, 0}}, Case{"t0", "", {3, 0}},
                    Case{"", "user", {5, 3, 1}}, Case{"t1", "user", {1}},
                    Case{"t1", "service_account", {4}}, Case{"t9", "", {}});
  for (int limit : {1, 2, 50}) {
    AuditQuery q{kDefaultTenantId, c.target_id, c.target_type, limit, ""};
    std::vector<int> got;
    while (true) {
      auto page = f.store->List(q);
      REQUIRE(page.ok());
      CHECK(static_cast<int>(page->items.size()) <= limit);
      for (const auto& e : page->items) got.push_back(e.action.back() - '0');
      if (page->next_cursor.empty()) break;
      q.cursor = page->next_cursor;
    }
    INFO("target " << c.target_id << " type " << c.target_type << " limit " << limit);
    CHECK(got == c.want);
  }
}

}  // namespace
}  // namespace warden::store

namespace warden::store {
namespace {

TEST_CASE("ImportAccounts writes accounts and their tokens in one transaction, all or nothing", "[store][conformance][account]") {
  testing::StoreFixture f;
  std::vector<ServiceAccount> accounts = {testing::MakeAccount("bulk-1"), testing::MakeAccount("bulk-2")};
  accounts[1].id = "01HBULK00000000000000000002";
  ApiTokenRecord t;
  t.id = "bulktoken1";
  t.tenant_id = kDefaultTenantId;
  t.account_id = accounts[1].id;
  t.name = "t";
  t.secret_hash = std::string(32, 'x');
  REQUIRE(f.Import(&accounts, {t}).ok());
  CHECK(!accounts[0].id.empty());
  CHECK(f.store->GetAccountByName(kDefaultTenantId, "bulk-1").value().id == accounts[0].id);
  CHECK(f.store->GetAccount(kDefaultTenantId, accounts[1].id).value().token_count == 1);
  CHECK(f.store->LookupToken("bulktoken1").value().account.name == "bulk-2");
  CHECK(f.store->ListPolicyVersions(kDefaultTenantId, accounts[0].id).value().size() == 1);

  // A taken name in the batch: nothing of it is stored.
  std::vector<ServiceAccount> again = {testing::MakeAccount("bulk-3"), testing::MakeAccount("bulk-1")};
  CHECK(f.Import(&again, {}).code() == StatusCode::kAlreadyExists);
  CHECK(f.store->GetAccountByName(kDefaultTenantId, "bulk-3").status().code() == StatusCode::kNotFound);
  // A token of an unknown account: likewise.
  std::vector<ServiceAccount> more = {testing::MakeAccount("bulk-4")};
  t.id = "bulktoken2";
  t.account_id = "nope";
  CHECK(f.Import(&more, {t}).code() == StatusCode::kNotFound);
  CHECK(f.store->GetAccountByName(kDefaultTenantId, "bulk-4").status().code() == StatusCode::kNotFound);
}

}  // namespace
}  // namespace warden::store
