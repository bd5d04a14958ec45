// End-to-end: the event loop never waits for the store. A check whose token is not cached is
// handed to a worker; checks of cached tokens are answered meanwhile. The store is made slow
// by fault injection (WARDEN_TEST_TOKEN_LOOKUP_DELAY_MS: every token lookup waits), and the
// test asserts the order of the answers, not their times.
#include <atomic>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

namespace warden::testing {

TEST_CASE("a token-cache miss stuck behind a slow store does not hold up cached tokens", "[check][hostile]") {
  TempDir dir;
  TestServer server({.data_dir = dir.path(), .env = {{"WARDEN_TEST_TOKEN_LOOKUP_DELAY_MS", "4000"}}});
  const std::string session = server.Login();
  AccountRef acct = CreateAccount(server, session, "slow", "role", "viewer");
  const std::string warm = CreateToken(server, session, acct.name, "warm").token;
  const std::string cold = CreateToken(server, session, acct.name, "cold").token;
  REQUIRE(CheckReason(server, warm, "company", "view") == "ALLOW_RULE");  // cached from now on

  auto handed_off = [&] {
    auto v = MetricValue(server.Get("/metrics").body, "warden_checks_handed_off_total");
    REQUIRE(v.has_value());
    return *v;
  };
  const double before = handed_off();
  std::atomic<bool> cold_done{false};
  std::string cold_reason;
  std::thread slow([&] {
    Reply r = Check(server, cold, "company", "view");
    cold_reason = r.json.value("reason", "");
    cold_done = true;
  });
  // Wait until the cold check has left the loop for a worker (a signal, not a sleep).
  while (handed_off() == before && !cold_done) std::this_thread::yield();
  // The warm token is answered while the cold one still waits for its lookup.
  for (int i = 0; i < 20; ++i) REQUIRE(CheckReason(server, warm, "company", "view") == "ALLOW_RULE");
  CHECK_FALSE(cold_done.load());
  slow.join();
  CHECK(cold_reason == "ALLOW_RULE");
  CHECK(handed_off() - before == 1);
  // Now cached: answered on the loop.
  CHECK(CheckReason(server, cold, "company", "view") == "ALLOW_RULE");
  CHECK(handed_off() - before == 1);
  // Every decision was logged, on the loop and on the worker alike.
  CHECK(DecisionRowCount(server) == 23);
}

}  // namespace warden::testing
