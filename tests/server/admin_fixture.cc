#include "tests/server/admin_fixture.h"

namespace warden::testing {

Session LoginSession(const TestServer& server, const std::string& email, const std::string& password) {
  Reply r = server.Post("/v1/auth/login", {{"email", email}, {"password", password}});
  INFO(r.body);
  REQUIRE(r.status == 200);
  Session s;
  s.token = r.json.value("token", "");
  s.csrf = r.json.value("csrf_token", "");
  s.set_cookie = r.Header("Set-Cookie");
  s.user = r.json["user"];
  REQUIRE(!s.token.empty());
  return s;
}

SharedServer& Shared() {
  // A function-local static: its destructor stops the server when the test binary exits.
  static SharedServer shared;
  if (!shared.server) {
    shared.server = std::make_unique<TestServer>(TestServer::Options{.data_dir = shared.dir.path()});
    shared.admin = LoginSession(*shared.server, "admin@localhost", shared.server->options().admin_password);
  }
  return shared;
}

std::string Unique(const std::string& base) {
  static int counter = 0;
  return base + "-" + std::to_string(++counter);
}

nlohmann::json ErrorOf(const Reply& reply) {
  if (!reply.json.is_object()) return nlohmann::json::object();
  auto it = reply.json.find("error");
  if (it == reply.json.end() || !it->is_object()) return nlohmann::json::object();
  return *it;
}

Reply Check(const TestServer& server, const std::string& token, const std::string& model,
            const std::string& action) {
  return server.Post("/v1/check", {{"token", token}, {"model", model}, {"action", action}});
}

nlohmann::json CreateAccount(const TestServer& server, const std::string& bearer, const std::string& name,
                             const nlohmann::json& from) {
  Reply r = server.Post("/v1/service-accounts", {{"name", name}, {"copy_permissions_from", from}}, bearer);
  INFO(r.body);
  REQUIRE(r.status == 201);
  return r.json;
}

nlohmann::json CreateToken(const TestServer& server, const std::string& bearer, const std::string& account,
                           const std::string& name) {
  Reply r = server.Post("/v1/service-accounts/" + account + "/tokens", {{"name", name}}, bearer);
  INFO(r.body);
  REQUIRE(r.status == 201);
  return r.json;
}

Reply Put(const TestServer& server, const std::string& path, const std::string& body, const std::string& bearer,
          const std::string& content_type) {
  return server.Call("PUT", path, body, bearer, {}, content_type);
}

Reply GetYaml(const TestServer& server, const std::string& path, const std::string& bearer) {
  return server.Call("GET", path, "", bearer, {{"Accept", "application/yaml"}});
}

nlohmann::json AllPages(const TestServer& server, const std::string& path, const std::string& bearer) {
  nlohmann::json all = nlohmann::json::array();
  std::string cursor;
  const char sep = path.find('?') == std::string::npos ? '?' : '&';
  for (int page = 0; page < 1000; ++page) {
    Reply r = server.Get(cursor.empty() ? path : path + sep + "cursor=" + cursor, bearer);
    INFO(r.body);
    REQUIRE(r.status == 200);
    for (const auto& item : r.json["items"]) all.push_back(item);
    if (!r.json.contains("next_cursor") || r.json["next_cursor"].is_null()) return all;
    cursor = r.json["next_cursor"].get<std::string>();
  }
  FAIL("paging did not end");
  return all;
}

}  // namespace warden::testing
