// TokenVerifier against a real SQLite store: the unknown-id cache and its invalidation
// contract (a made-up id is looked up once; creating a token with that id makes it valid on
// the next check).
#include <catch2/catch.hpp>

#include "common/clock.h"
#include "common/crypto.h"
#include "server/ops/metrics.h"
#include "server/ops/policy_manager.h"
#include "server/check/token_verifier.h"
#include "store/sqlite_store.h"
#include "tests/server/harness.h"

namespace warden::server {

TEST_CASE("TokenVerifier remembers unknown ids until a token with that id is created", "[verifier][hostile]") {
  testing::TempDir dir;
  auto& clock = SystemClock::Get();
  auto st = store::SqliteStore::Open(dir.path() + "/warden.db", clock);
  REQUIRE(st.ok());
  store::SqliteStore& store = **st;
  Metrics metrics;
  PolicyManager policies(std::string(WARDEN_SOURCE_DIR) + "/policies", clock, &metrics);
  REQUIRE(policies.Reload().ok());
  TokenVerifier verifier(&store, &policies, "pepper-0123456789abcdef0123456789abcdef", "wdn", clock, &metrics);

  const ApiToken token = NewApiToken("wdn");
  const std::string text = FormatApiToken(token);
  CHECK(verifier.Verify(text).outcome == TokenVerifier::Outcome::kUnknown);
  CHECK(metrics.token_cache_misses == 1);
  CHECK(verifier.Verify(text).outcome == TokenVerifier::Outcome::kUnknown);
  CHECK(metrics.token_cache_misses == 1);  // answered from the unknown-id cache
  CHECK(metrics.token_unknown_cache_hits == 1);

  // The token is created in the store with exactly that id: until the creator says so, the
  // cache still answers unknown (this is why POST .../tokens calls NoteTokenCreated).
  REQUIRE(store.EnsureDefaultTenant().ok());
  store::ServiceAccount account;
  account.tenant_id = store::kDefaultTenantId;
  account.name = "a";
  account.policy_yaml = "apiVersion: warden/v1\nkind: ServiceAccountPolicy\npermissions:\n  company: [view]\n";
  auto created = store.CreateAccount(account);
  REQUIRE(created.ok());
  store::ApiTokenRecord record;
  record.id = token.id;
  record.tenant_id = store::kDefaultTenantId;
  record.account_id = created->id;
  record.name = "t";
  record.secret_hash = verifier.HashSecret(token.secret);
  record.display_prefix = TokenDisplayPrefix(token);
  REQUIRE(store.CreateToken(record).ok());
  CHECK(verifier.Verify(text).outcome == TokenVerifier::Outcome::kUnknown);
  verifier.NoteTokenCreated(token.id);
  TokenVerifier::Result ok = verifier.Verify(text);
  CHECK(ok.outcome == TokenVerifier::Outcome::kOk);
  REQUIRE(ok.account);
  CHECK(ok.account->principal.id == created->id);

  // Unknown ids pile up beside it without touching the real token's entry.
  for (int i = 0; i < 1000; ++i) (void)verifier.Verify(FormatApiToken(NewApiToken("wdn")));
  const uint64_t misses = metrics.token_cache_misses;
  CHECK(verifier.Verify(text).outcome == TokenVerifier::Outcome::kOk);  // the real token is unaffected
  CHECK(metrics.token_cache_misses == misses);
}

}  // namespace warden::server
