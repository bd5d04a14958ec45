// Forward-auth (DESIGN.md 6.2) at the request level, in each gateway's request shape: Traefik
// and Caddy (X-Forwarded-*), nginx (X-Original-URI), ingress-nginx (X-Original-URL) and
// Envoy's path-prefix mode; 200 with identity headers, 401 for credentials, 403 for denies
// (UNKNOWN_ROUTE included), and one decision row each with the original method and path.
// The real nginx and caddy in front of an upstream are in gateway_test.cc.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

namespace warden::testing {
namespace {

struct Fixture {
  TempDir data;
  TestServer server;
  std::string session;
  std::string token;  // an account copied from the viewer role (views customers, changes nothing)
  explicit Fixture(std::map<std::string, std::string> env = {})
      : server({.data_dir = data.path(), .env = std::move(env)}) {
    session = server.Login();
    CreateAccount(server, session, "gateway-client", "role", "viewer");
    token = CreateToken(server, session, "gateway-client").token;
  }
  Reply Ask(const std::string& method, const std::string& path, httplib::Headers headers,
            const std::string& bearer = "") const {
    return server.Call(method, path, "", bearer, headers, "");
  }
  std::vector<nlohmann::json> History() const {
    return AllPages(server, session, "/v1/service-accounts/gateway-client/logs");
  }
};

TEST_CASE("forward-auth decides the forwarded request in every gateway's shape", "[forward-auth]") {
  Fixture f;
  struct Shape {
    const char* gateway;
    const char* method;  // of the request to warden
    const char* path;    // of the request to warden
    httplib::Headers headers;
  };
  const std::vector<Shape> allowed = {
      {"traefik/caddy", "GET", "/v1/forward-auth", {{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/companies/c1?fields=name"}}},
      {"nginx", "GET", "/v1/forward-auth", {{"X-Original-Method", "GET"}, {"X-Original-URI", "/companies/c1"}}},
      {"ingress-nginx", "GET", "/v1/forward-auth", {{"X-Original-Method", "GET"}, {"X-Original-URL", "https://api.example.com/companies/c1?x=1"}}},
      {"envoy", "GET", "/v1/forward-auth/companies/c1", {}},
      {"envoy HEAD", "HEAD", "/v1/forward-auth/companies/c1", {}},
  };
  for (const Shape& s : allowed) {
    INFO(s.gateway);
    Reply r = f.Ask(s.method, s.path, s.headers, f.token);
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.body.empty());
    CHECK(r.Header("X-Warden-Principal-Type") == "service_account");
    CHECK(r.Header("X-Warden-Principal-Name") == "gateway-client");
    CHECK(!r.Header("X-Warden-Principal-Id").empty());
    CHECK(!r.Header("X-Warden-Token-Id").empty());
    CHECK(r.Header("X-Warden-Rule").rfind("sa:gateway-client#", 0) == 0);
    CHECK(!r.Header("X-Warden-Decision-Id").empty());
  }
  // Denied: the viewer copy deletes nothing and creates nothing.
  const std::vector<Shape> denied = {
      {"traefik/caddy", "GET", "/v1/forward-auth", {{"X-Forwarded-Method", "DELETE"}, {"X-Forwarded-Uri", "/companies/c1"}}},
      {"nginx", "GET", "/v1/forward-auth", {{"X-Original-Method", "POST"}, {"X-Original-URI", "/companies"}}},
      {"envoy", "DELETE", "/v1/forward-auth/companies/c1", {}},
  };
  for (const Shape& s : denied) {
    INFO(s.gateway);
    Reply r = f.Ask(s.method, s.path, s.headers, f.token);
    INFO(r.body);
    CHECK(r.status == 403);
    CHECK(r.Header("X-Warden-Reason") == "NO_MATCHING_ALLOW");
    CHECK(r.Header("WWW-Authenticate").empty());
    CHECK(r.json["error"]["code"] == "permission_denied");
  }
  // No route: denied, never an error.
  Reply unknown = f.Ask("GET", "/v1/forward-auth", {{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/admin/secrets"}}, f.token);
  CHECK(unknown.status == 403);
  CHECK(unknown.Header("X-Warden-Reason") == "UNKNOWN_ROUTE");
  Reply traversal = f.Ask("GET", "/v1/forward-auth", {{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/companies/../admin"}}, f.token);
  CHECK(traversal.status == 403);
  CHECK(traversal.Header("X-Warden-Reason") == "UNKNOWN_ROUTE");

  // One row per decision, newest first, with the original method and path (no query).
  std::vector<nlohmann::json> rows = f.History();
  REQUIRE(rows.size() == allowed.size() + denied.size() + 2);
  std::reverse(rows.begin(), rows.end());
  CHECK(rows[0]["context"]["method"] == "GET");
  CHECK(rows[0]["context"]["path"] == "/companies/c1");
  CHECK(rows[0]["model"] == "company");
  CHECK(rows[0]["action"] == "view");
  CHECK(rows[0]["resource_id"] == "c1");
  CHECK(rows[0]["allowed"] == true);
  CHECK(rows[2]["context"]["path"] == "/companies/c1");  // from X-Original-URL
  CHECK(rows[4]["context"]["method"] == "HEAD");
  CHECK(rows[5]["context"]["method"] == "DELETE");
  CHECK(rows[5]["action"] == "delete");
  CHECK(rows[5]["allowed"] == false);
  CHECK(rows[6]["action"] == "create");
  CHECK(rows[8]["reason"] == "UNKNOWN_ROUTE");
  CHECK(rows[8]["context"]["path"] == "/admin/secrets");
  CHECK(rows[9]["context"]["path"] == "/companies/../admin");
}

TEST_CASE("forward-auth answers 401 for a missing, bad or disabled credential", "[forward-auth]") {
  Fixture f;
  const httplib::Headers ask = {{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/companies/c1"}};
  Reply missing = f.Ask("GET", "/v1/forward-auth", ask);
  CHECK(missing.status == 401);
  CHECK(missing.Header("WWW-Authenticate") == "Bearer realm=\"warden\"");
  CHECK(missing.Header("X-Warden-Reason") == "TOKEN_INVALID");
  Reply bad = f.Ask("GET", "/v1/forward-auth", ask, "wdn_" + std::string(40, 'A'));
  CHECK(bad.status == 401);
  CHECK(bad.Header("X-Warden-Reason") == "TOKEN_INVALID");
  CHECK(bad.Header("X-Warden-Principal-Id").empty());

  REQUIRE(f.server.Patch("/v1/service-accounts/gateway-client", {{"enabled", false}}, f.session).status == 200);
  Reply disabled = f.Ask("GET", "/v1/forward-auth", ask, f.token);
  CHECK(disabled.status == 401);
  CHECK(disabled.Header("X-Warden-Reason") == "ACCOUNT_DISABLED");
  REQUIRE(f.server.Patch("/v1/service-accounts/gateway-client", {{"enabled", true}}, f.session).status == 200);
  CHECK(f.Ask("GET", "/v1/forward-auth", ask, f.token).status == 200);

  // The disabled check is the account's row; the bad tokens are unauthenticated rows.
  std::vector<nlohmann::json> rows = f.History();
  REQUIRE(rows.size() == 2);
  CHECK(rows[1]["reason"] == "ACCOUNT_DISABLED");
  CHECK(rows[0]["allowed"] == true);
}

TEST_CASE("forward-auth takes the client address from a trusted proxy only, and a configured header",
          "[forward-auth]") {
  const httplib::Headers ask = {{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/companies/c1"},
                                {"X-Forwarded-For", "10.0.0.1, 203.0.113.7"}};
  {
    Fixture f;  // no trusted proxy: the peer is the client
    REQUIRE(f.Ask("GET", "/v1/forward-auth", ask, f.token).status == 200);
    CHECK(f.History().at(0)["context"]["client_addr"] == "127.0.0.1");
  }
  {
    Fixture f({{"WARDEN_TRUSTED_PROXIES", "10.9.9.9, 127.0.0.1"}, {"WARDEN_FORWARD_AUTH_HEADER", "X-Api-Key"}});
    httplib::Headers with_key = ask;
    with_key.emplace("X-Api-Key", f.token);
    REQUIRE(f.Ask("GET", "/v1/forward-auth", with_key).status == 200);
    // The entry the proxy appended, not the one the client put first.
    CHECK(f.History().at(0)["context"]["client_addr"] == "203.0.113.7");
    // Authorization is not the credential any more.
    CHECK(f.Ask("GET", "/v1/forward-auth", ask, f.token).status == 401);
  }
}

TEST_CASE("forward-auth refuses a request with nothing to decide, and bounds the forwarded URI", "[forward-auth]") {
  Fixture f;
  Reply no_method = f.Ask("GET", "/v1/forward-auth", {{"X-Forwarded-Uri", "/companies/c1"}}, f.token);
  CHECK(no_method.status == 400);
  CHECK(no_method.json["error"]["code"] == "invalid_argument");
  Reply relative = f.Ask("GET", "/v1/forward-auth", {{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "companies"}}, f.token);
  CHECK(relative.status == 400);
  Reply huge = f.Ask("GET", "/v1/forward-auth", {{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/" + std::string(9000, 'a')}}, f.token);
  CHECK(huge.status == 400);
  CHECK(f.History().empty());
  // A path outside /v1/forward-auth is not forward-auth.
  CHECK(f.Ask("GET", "/v1/forward-authx", {}, f.token).status == 404);
}

TEST_CASE("behind a trusted gateway the invalid-token budget is the client's, not the gateway's", "[forward-auth]") {
  Fixture f({{"WARDEN_TRUSTED_PROXIES", "127.0.0.1"}, {"WARDEN_INVALID_TOKENS_PER_MINUTE", "3"}});
  const std::string bad = "wdn_" + std::string(40, 'A');
  auto ask = [&](const std::string& client) {
    return f.Ask("GET", "/v1/forward-auth",
                 {{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/companies/c1"}, {"X-Forwarded-For", client}}, bad);
  };
  for (int i = 0; i < 3; ++i) CHECK(ask("198.51.100.1").status == 401);
  Reply throttled = ask("198.51.100.1");
  CHECK(throttled.status == 429);
  CHECK(!throttled.Header("Retry-After").empty());
  CHECK(ask("198.51.100.2").status == 401);  // another client behind the same gateway
  // A valid token is never throttled.
  CHECK(f.Ask("GET", "/v1/forward-auth",
              {{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/companies/c1"}, {"X-Forwarded-For", "198.51.100.1"}},
              f.token)
            .status == 200);
}

}  // namespace
}  // namespace warden::testing
