// Three warden replicas on one PostgreSQL store behind a real nginx (round robin): every change
// that affects a decision, made through one replica, reaches the other two within 1 s, also
// after a replica's database connections were killed (pg_terminate_backend). Prints the
// measured propagation times (ctest's server_test_pg; needs WARDEN_TEST_PG and nginx).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>

#include "tests/pg_test_schema.h"
#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

extern char** environ;

namespace warden::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kNginx[] = "/usr/sbin/nginx";


// nginx in the foreground, proxying round robin to `ports`, on a free port.
class Nginx {
 public:
  explicit Nginx(const std::vector<int>& ports) : port_(FreePort()) {
    const std::string d = dir_.path();
    std::string upstream;
    for (int p : ports) upstream += "    server 127.0.0.1:" + std::to_string(p) + ";\n";
    WriteFile(d + "/nginx.conf",
              "daemon off;\nworker_processes 1;\npid " + d + "/nginx.pid;\nerror_log " + d + "/error.log warn;\n"
              "events { worker_connections 512; }\n"
              "http {\n  access_log off;\n"
              "  client_body_temp_path " + d + "/body;\n  proxy_temp_path " + d + "/proxy;\n"
              "  fastcgi_temp_path " + d + "/fastcgi;\n  uwsgi_temp_path " + d + "/uwsgi;\n  scgi_temp_path " + d + "/scgi;\n"
              "  upstream warden {\n" + upstream + "    keepalive 32;\n  }\n"
              "  server {\n    listen 127.0.0.1:" + std::to_string(port_) + ";\n"
              "    location / {\n      proxy_pass http://warden;\n      proxy_http_version 1.1;\n"
              "      proxy_set_header Connection \"\";\n      proxy_next_upstream off;\n    }\n  }\n}\n");
    const std::string conf = d + "/nginx.conf", err = d + "/error.log";
    const char* argv[] = {kNginx, "-e", err.c_str(), "-p", d.c_str(), "-c", conf.c_str(), nullptr};
    REQUIRE(posix_spawn(&pid_, kNginx, nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
    for (int i = 0; i < 500; ++i) {
      httplib::Client c("127.0.0.1", port_);
      c.set_connection_timeout(1, 0);
      c.set_read_timeout(2, 0);
      if (c.Get("/healthz")) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("nginx did not start: " << ReadFile(err));
  }
  ~Nginx() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  int port() const { return port_; }

 private:
  TempDir dir_;
  int port_;
  pid_t pid_ = -1;
};

Reply CheckAt(int port, const json& body) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5, 0);
  auto r = c.Post("/v1/check", body.dump(), "application/json");
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.json = json::parse(r->body, nullptr, false);
  return out;
}

bool Allowed(const Reply& r) { return r.status == 200 && r.json.is_object() && r.json.value("allowed", false); }

}  // namespace

TEST_CASE("replicas: a change made through one replica reaches the other two within 1 s", "[.][pg][replicas]") {
  if (!std::filesystem::exists(kNginx)) {
    WARN("SKIPPED: nginx is not installed (Debian package nginx)");
    return;
  }
  PgSchema schema;
  const std::string pepper = "replicas-test-pepper-0123456789abcdef0123456789abcdef";
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::unique_ptr<TestServer>> replicas;
  for (int i = 0; i < 3; ++i) {  // one after the other: the first creates the admin user
    dirs.push_back(std::make_unique<TempDir>());
    TestServer::Options options{.data_dir = dirs.back()->path()};
    options.env = {{"WARDEN_STORE", schema.url() + "&application_name=replica-" + std::to_string(i)},
                   {"WARDEN_TOKEN_PEPPER", pepper},
                   {"WARDEN_ACCESS_LOG", "false"}};
    replicas.push_back(std::make_unique<TestServer>(options));
  }
  Nginx nginx({replicas[0]->port(), replicas[1]->port(), replicas[2]->port()});
  const TestServer& a = *replicas[0];
  const std::string session = a.Login();
  AccountRef account = CreateAccount(a, session, "shared", "role", "viewer");
  const std::string token = CreateToken(a, session, account.name, "t1").token;
  const TokenRef second = CreateToken(a, session, account.name, "t2");
  const std::string tenant_token = a.Get("/v1/tenant", session).json["tenant_token"].get<std::string>();
  const json company_view = {{"token", token}, {"model", "company"}, {"action", "view"}};
  const json company_update = {{"token", token}, {"model", "company"}, {"action", "update"}};
  const json second_view = {{"token", second.token}, {"model", "company"}, {"action", "update"}};  // allowed after the permission change
  const json tenant_event = {{"tenant_token", tenant_token}, {"model", "user_activity"}, {"action", "create"}};

  std::vector<double> samples;  // ms from the acknowledged change to the first agreeing answer
  // After `change` is acknowledged by replica A, checks `body` on B and C (directly) until each
  // answers `want_allowed`, then through nginx (all three, round robin) six times.
  auto propagates = [&](const char* what, const std::function<void()>& change, const json& body, bool want_allowed) {
    INFO(what);
    for (int i = 1; i < 3; ++i) {  // the others have it cached
      REQUIRE(Allowed(CheckAt(replicas[i]->port(), body)) == !want_allowed);
    }
    change();
    const auto start = Clock::now();
    double took[3] = {-1, -1, -1};
    while (Clock::now() - start < std::chrono::seconds(3) && (took[1] < 0 || took[2] < 0)) {
      for (int i = 1; i < 3; ++i) {
        if (took[i] >= 0) continue;
        Reply r = CheckAt(replicas[i]->port(), body);
        if (r.status == 200 && Allowed(r) == want_allowed) {
          took[i] = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (int i = 1; i < 3; ++i) {
      INFO("replica " << i);
      CHECK(took[i] >= 0);
      CHECK(took[i] <= 1000);
      samples.push_back(took[i]);
    }
    std::printf("propagation %-28s replica 1: %6.1f ms, replica 2: %6.1f ms\n", what, took[1], took[2]);
    for (int i = 0; i < 6; ++i) {
      Reply r = CheckAt(nginx.port(), body);
      INFO(r.body);
      CHECK(r.status == 200);
      CHECK(Allowed(r) == want_allowed);
    }
  };
  auto patch = [&](const json& body) {
    Reply r = a.Patch("/v1/service-accounts/" + account.name, body, session);
    INFO(r.body);
    REQUIRE(r.status == 200);
  };
  // Round robin through nginx reaches all three, and each caches the token.
  for (int i = 0; i < 6; ++i) REQUIRE(Allowed(CheckAt(nginx.port(), company_view)));

  propagates("account disabled", [&] { patch({{"enabled", false}}); }, company_view, false);
  propagates("account enabled", [&] { patch({{"enabled", true}}); }, company_view, true);
  propagates("permissions changed", [&] {
    Reply r = a.Call("PUT", "/v1/service-accounts/" + account.name + "/permissions",
                     json{{"permissions", {{"company", {"update"}}}}}.dump(), session);
    INFO(r.body);
    REQUIRE(r.status == 200);
  }, company_view, false);
  // Kill every database connection of replica 1 (its pool and its listener), then change at
  // once: the notification is sent while it is reconnecting; its poll finds the change.
  const auto killed = [&] {
    PgSchema::Run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'replica-1'");
  };
  for (int i = 1; i < 3; ++i) REQUIRE(Allowed(CheckAt(replicas[i]->port(), second_view)));
  propagates("token deleted (conn killed)", [&] {
    killed();
    Reply r = a.Delete("/v1/service-accounts/" + account.name + "/tokens/" + second.id, session);
    INFO(r.body);
    REQUIRE(r.status == 204);
  }, second_view, false);
  for (int i = 1; i < 3; ++i) REQUIRE(Allowed(CheckAt(replicas[i]->port(), tenant_event)));
  propagates("tenant token rotated", [&] {
    killed();
    Reply r = a.Post("/v1/tenant/token:rotate", json::object(), session);
    INFO(r.body);
    REQUIRE(r.status == 200);
  }, tenant_event, false);
  propagates("account deleted", [&] {
    Reply r = a.Delete("/v1/service-accounts/" + account.name, session);
    INFO(r.body);
    REQUIRE(r.status == 204);
  }, company_update, false);

  std::sort(samples.begin(), samples.end());
  const double median = samples[samples.size() / 2];
  std::printf("propagation over %zu samples: median %.1f ms, max %.1f ms\n", samples.size(), median, samples.back());
  WARN("propagation: median " << median << " ms, max " << samples.back() << " ms");
  CHECK(samples.back() <= 1000);
}

}  // namespace warden::testing
