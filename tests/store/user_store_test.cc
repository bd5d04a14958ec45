// Tenants, users, sessions and health: conformance tests of every backend (store_test_util.h).
#include <catch2/catch.hpp>

#include "tests/store/store_test_util.h"

namespace warden::store {
namespace {

using testing::StoreFixture;

TEST_CASE("Tenants: default tenant, token rotation and lookup", "[store][conformance][tenant]") {
  StoreFixture f;
  auto t1 = f.store->EnsureDefaultTenant();
  REQUIRE(t1.ok());
  CHECK(t1->id == kDefaultTenantId);
  CHECK(t1->tenant_token.size() == 36);
  auto again = f.store->EnsureDefaultTenant();
  REQUIRE(again.ok());
  CHECK(again->tenant_token == t1->tenant_token);
  CHECK(again->created_at == t1->created_at);

  auto found = f.store->FindTenantByToken(t1->tenant_token);
  REQUIRE(found.ok());
  CHECK(found->id == kDefaultTenantId);

  AuditEntry audit;
  audit.actor_type = kActorUser;
  audit.actor_id = "u1";
  audit.action = "tenant.token_rotated";
  audit.target_type = "tenant";
  auto rotated = f.store->RotateTenantToken(kDefaultTenantId, &audit);
  REQUIRE(rotated.ok());
  CHECK(*rotated != t1->tenant_token);
  CHECK(f.store->FindTenantByToken(t1->tenant_token).status().code() == StatusCode::kNotFound);
  CHECK(f.store->FindTenantByToken(*rotated).ok());
  CHECK(f.store->FindTenantByToken("").status().code() == StatusCode::kNotFound);
  CHECK(f.store->GetTenant(kDefaultTenantId)->tenant_token == *rotated);
  CHECK(f.store->GetTenant("nope").status().code() == StatusCode::kNotFound);
  CHECK(f.store->RotateTenantToken("nope").status().code() == StatusCode::kNotFound);

  auto log = f.store->List(testing::AuditFor());
  REQUIRE(log.ok());
  REQUIRE(log->items.size() == 1);
  CHECK(log->items[0].action == "tenant.token_rotated");
  CHECK(log->items[0].target_id == kDefaultTenantId);
  // The audit row never holds the secret.
  CHECK(log->items[0].details.dump().find(*rotated) == std::string::npos);
}

User MakeUser(const std::string& email) {
  User u;
  u.tenant_id = kDefaultTenantId;
  u.email = email;
  u.name = "Name " + email;
  u.roles = {"developer", "viewer"};
  u.attributes = {{"team", "core"}, {"level", 3}};
  u.password_hash = "scrypt$secret-hash";
  return u;
}

TEST_CASE("Users: create, get, find, update, delete and their errors", "[store][conformance][user]") {
  StoreFixture f;
  auto created = f.store->CreateUser(MakeUser("Ann@Example.com"));
  REQUIRE(created.ok());
  CHECK(created->id.size() == 26);
  CHECK(created->created_at == f.clock.NowMillis());

  auto got = f.store->GetUser(kDefaultTenantId, created->id);
  REQUIRE(got.ok());
  CHECK(got->email == "Ann@Example.com");
  CHECK(got->roles == std::vector<std::string>{"developer", "viewer"});
  CHECK(got->attributes["team"] == "core");
  CHECK(got->attributes["level"] == 3);
  CHECK(got->enabled);
  CHECK(got->password_hash == "scrypt$secret-hash");

  SECTION("email lookup is case-insensitive") {
    auto found = f.store->FindUserByEmail(kDefaultTenantId, "ann@EXAMPLE.com");
    REQUIRE(found.ok());
    CHECK(found->id == created->id);
    CHECK(f.store->FindUserByEmail(kDefaultTenantId, "bob@example.com").status().code() ==
          StatusCode::kNotFound);
  }
  SECTION("duplicate email (any case) is AlreadyExists and the message has no secret") {
    auto dup = f.store->CreateUser(MakeUser("ann@example.COM"));
    CHECK(dup.status().code() == StatusCode::kAlreadyExists);
    CHECK(dup.status().field() == "email");
    CHECK(dup.status().message().find("secret") == std::string::npos);
    CHECK(f.store->CountUsers(kDefaultTenantId).value() == 1);
  }
  SECTION("bad input") {
    CHECK(f.store->CreateUser(MakeUser("")).status().code() == StatusCode::kInvalidArgument);
    User u = MakeUser("x@y");
    u.tenant_id = "no-such-tenant";
    CHECK(f.store->CreateUser(u).status().code() == StatusCode::kNotFound);
    u = MakeUser("x@y");
    u.attributes = nlohmann::json::array();
    CHECK(f.store->CreateUser(u).status().code() == StatusCode::kInvalidArgument);
  }
  SECTION("update changes only the given fields") {
    f.clock.Advance(1000);
    UserUpdate up;
    up.name = "Ann B";
    up.enabled = false;
    up.roles = std::vector<std::string>{"admin"};
    auto updated = f.store->UpdateUser(kDefaultTenantId, created->id, up);
    REQUIRE(updated.ok());
    auto again = f.store->GetUser(kDefaultTenantId, created->id);
    REQUIRE(again.ok());
    CHECK(again->name == "Ann B");
    CHECK_FALSE(again->enabled);
    CHECK(again->roles == std::vector<std::string>{"admin"});
    CHECK(again->email == "Ann@Example.com");
    CHECK(again->password_hash == "scrypt$secret-hash");
    CHECK(again->updated_at == created->created_at + 1000);
    CHECK(again->created_at == created->created_at);
  }
  SECTION("update onto a taken email is AlreadyExists; unknown id NotFound") {
    auto bob = f.store->CreateUser(MakeUser("bob@example.com"));
    REQUIRE(bob.ok());
    UserUpdate up;
    up.email = "ANN@example.com";
    CHECK(f.store->UpdateUser(kDefaultTenantId, bob->id, up).status().code() ==
          StatusCode::kAlreadyExists);
    CHECK(f.store->UpdateUser(kDefaultTenantId, "nope", up).status().code() ==
          StatusCode::kNotFound);
    // Another tenant's id space is separate.
    CHECK(f.store->GetUser("other", bob->id).status().code() == StatusCode::kNotFound);
  }
  SECTION("delete removes the user and its sessions, and writes the audit row atomically") {
    Session s;
    s.tenant_id = kDefaultTenantId;
    s.user_id = created->id;
    s.token_hash = "abcd";
    s.csrf_token = "csrf";
    s.expires_at = f.clock.NowMillis() + 60000;
    REQUIRE(f.store->CreateSession(s).ok());
    AuditEntry audit;
    audit.actor_type = kActorUser;
    audit.actor_id = "admin";
    audit.action = "user.deleted";
    audit.target_type = "user";
    REQUIRE(f.store->DeleteUser(kDefaultTenantId, created->id, &audit).ok());
    CHECK(f.store->GetUser(kDefaultTenantId, created->id).status().code() ==
          StatusCode::kNotFound);
    CHECK(f.store->FindSessionByHash("abcd").status().code() == StatusCode::kNotFound);
    CHECK(f.store->DeleteUser(kDefaultTenantId, created->id, &audit).code() ==
          StatusCode::kNotFound);
    auto log = f.store->List(testing::AuditFor());
    REQUIRE(log->items.size() == 1);  // the failed second delete wrote nothing
    CHECK(log->items[0].target_id == created->id);
    CHECK(log->items[0].target_name == "Ann@Example.com");
  }
}

TEST_CASE("Users are listed newest first with cursor paging", "[store][conformance][user]") {
  StoreFixture f;
  for (int i = 0; i < 7; ++i) {
    REQUIRE(f.store->CreateUser(MakeUser("u" + std::to_string(i) + "@x")).ok());
  }
  CHECK(f.store->CountUsers(kDefaultTenantId).value() == 7);
  std::vector<std::string> emails;
  ListOptions opt;
  opt.limit = 3;
  int pages = 0;
  while (true) {
    auto page = f.store->ListUsers(kDefaultTenantId, opt);
    REQUIRE(page.ok());
    ++pages;
    for (const auto& u : page->items) emails.push_back(u.email);
    if (page->next_cursor.empty()) break;
    opt.cursor = page->next_cursor;
  }
  CHECK(pages == 3);
  CHECK(emails == std::vector<std::string>{"u6@x", "u5@x", "u4@x", "u3@x", "u2@x", "u1@x", "u0@x"});
  opt.cursor = "garbage";
  CHECK(f.store->ListUsers(kDefaultTenantId, opt).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("Sessions: expiry, lookup by hash and deletion", "[store][conformance][session]") {
  StoreFixture f;
  auto user = f.store->CreateUser(MakeUser("s@x"));
  REQUIRE(user.ok());
  auto make = [&](const std::string& hash, int64_t ttl) {
    Session s;
    s.tenant_id = kDefaultTenantId;
    s.user_id = user->id;
    s.token_hash = hash;
    s.csrf_token = "csrf-" + hash;
    s.expires_at = f.clock.NowMillis() + ttl;
    return s;
  };
  auto a = f.store->CreateSession(make("h1", 1000));
  REQUIRE(a.ok());
  auto b = f.store->CreateSession(make("h2", 5000));
  REQUIRE(b.ok());
  CHECK(f.store->CreateSession(make("h1", 1000)).status().code() == StatusCode::kAlreadyExists);
  Session orphan = make("h3", 1000);
  orphan.user_id = "no-user";
  CHECK(f.store->CreateSession(orphan).status().code() == StatusCode::kNotFound);

  auto found = f.store->FindSessionByHash("h1");
  REQUIRE(found.ok());
  CHECK(found->id == a->id);
  CHECK(found->csrf_token == "csrf-h1");

  f.clock.Advance(1000);  // h1 expires exactly now
  CHECK(f.store->FindSessionByHash("h1").status().code() == StatusCode::kNotFound);
  CHECK(f.store->FindSessionByHash("h2").ok());
  CHECK(f.store->DeleteExpiredSessions().value() == 1);
  CHECK(f.store->DeleteExpiredSessions().value() == 0);

  REQUIRE(f.store->DeleteSession(b->id).ok());
  CHECK(f.store->DeleteSession(b->id).code() == StatusCode::kNotFound);
  CHECK(f.store->FindSessionByHash("h2").status().code() == StatusCode::kNotFound);

  REQUIRE(f.store->CreateSession(make("h4", 1000)).ok());
  REQUIRE(f.store->CreateSession(make("h5", 1000)).ok());
  CHECK(f.store->DeleteSessionsOfUser(kDefaultTenantId, user->id).value() == 2);
}

TEST_CASE("Ping writes to the database", "[store][conformance][health]") {
  StoreFixture f;
  REQUIRE(f.store->Ping().ok());
  f.clock.Advance(5);
  REQUIRE(f.store->Ping().ok());
}

}  // namespace
}  // namespace warden::store
