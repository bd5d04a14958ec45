// Shared pieces of the admin API end-to-end tests ([admin]): one server per test binary for
// the tests that only add uniquely named state (started on first use, admin logged in once,
// since a scrypt login is slow), and helpers for the calls and the JSON error shape.
// Not thread-safe: Catch2 runs test cases one at a time.
#pragma once

#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/server/harness.h"

namespace warden::testing {

// What POST /v1/auth/login answered.
struct Session {
  std::string token;
  std::string csrf;
  std::string set_cookie;  // the Set-Cookie header
  nlohmann::json user;
};

// Logs in (REQUIREs 200).
Session LoginSession(const TestServer& server, const std::string& email, const std::string& password);

struct SharedServer {
  TempDir dir;
  std::unique_ptr<TestServer> server;
  Session admin;
};
// The shared server; its failed-login budget (10 a minute) must not be spent by tests.
SharedServer& Shared();

// A name no other test of this run uses: `base` + "-" + a counter.
std::string Unique(const std::string& base);

// `reply.json["error"]`, or an empty object when the body is not the error shape.
nlohmann::json ErrorOf(const Reply& reply);

// POST /v1/check for one (model, action).
Reply Check(const TestServer& server, const std::string& token, const std::string& model,
            const std::string& action);
// POST /v1/service-accounts (REQUIREs 201); `from` is copy_permissions_from.
nlohmann::json CreateAccount(const TestServer& server, const std::string& bearer, const std::string& name,
                             const nlohmann::json& from = {{"kind", "scratch"}});
// POST .../tokens (REQUIREs 201); returns the create response.
nlohmann::json CreateToken(const TestServer& server, const std::string& bearer, const std::string& account,
                           const std::string& name);
// PUT with a body of the given content type.
Reply Put(const TestServer& server, const std::string& path, const std::string& body, const std::string& bearer,
          const std::string& content_type);
// GET .../permissions as YAML.
Reply GetYaml(const TestServer& server, const std::string& path, const std::string& bearer);
// Every item of a paged list, following next_cursor (REQUIREs 200 on each page).
nlohmann::json AllPages(const TestServer& server, const std::string& path, const std::string& bearer);

}  // namespace warden::testing

// Checks that `reply` is {"error": {"code", "message"[, "field"]}} with the HTTP status.
#define CHECK_ERROR(reply, http_status, error_code)                            \
  do {                                                                         \
    const ::warden::testing::Reply& r_ = (reply);                              \
    INFO("body: " << r_.body);                                                 \
    CHECK(r_.status == (http_status));                                         \
    CHECK(::warden::testing::ErrorOf(r_).value("code", "") == (error_code));   \
    CHECK(!::warden::testing::ErrorOf(r_).value("message", "").empty());       \
  } while (0)

#define CHECK_ERROR_FIELD(reply, http_status, error_code, error_field)          \
  do {                                                                          \
    CHECK_ERROR(reply, http_status, error_code);                                \
    INFO("body: " << (reply).body);                                             \
    CHECK(::warden::testing::ErrorOf(reply).value("field", "") == (error_field)); \
  } while (0)
