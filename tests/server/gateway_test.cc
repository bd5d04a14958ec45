// Real gateways in front of a real upstream, asking warden (DESIGN.md 6.2): Debian's nginx
// (auth_request) and caddy (forward_auth) run the configs of examples/nginx and examples/caddy
// on free ports. Allowed requests reach the upstream with warden's identity headers (and
// neither the token nor identity headers a client forged), denied ones get 403, bad tokens 401
// with WWW-Authenticate, and the decision log has each row with the original method and path.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/server/check_helpers.h"
#include "tests/server/harness.h"

namespace warden::testing {
namespace {

// A child process (the gateway), its output in `log`, stopped by the destructor.
class Child {
 public:
  Child(std::vector<std::string> argv, std::vector<std::string> env, std::string log) : log_(std::move(log)) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      FILE* out = std::fopen(log_.c_str(), "w");
      if (out) {
        ::dup2(fileno(out), 1);
        ::dup2(fileno(out), 2);
      }
      for (const std::string& e : env) ::putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> args;
      for (std::string& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      std::_Exit(127);
    }
  }
  ~Child() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  std::string Log() const { return ReadFile(log_); }
  bool Running() const { return ::waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

// The API behind the gateway: answers every request with the method, path and headers it got.
class Upstream {
 public:
  Upstream() {
    server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      nlohmann::json headers = nlohmann::json::object();
      for (const auto& [name, value] : req.headers) headers[name] = value;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++requests_;
      }
      res.set_content(nlohmann::json{{"method", req.method}, {"path", req.path}, {"headers", headers}}.dump(),
                      "application/json");
      return httplib::Server::HandlerResponse::Handled;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Upstream() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  int requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  int requests_ = 0;
};

bool WaitForPort(int port, const Child& child) {
  for (int i = 0; i < 200; ++i) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(0, 200'000);
    if (c.Get("/__ready")) return true;
    if (!child.Running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

struct Warden {
  TempDir data;
  TestServer server{{.data_dir = data.path(), .env = {{"WARDEN_TRUSTED_PROXIES", "127.0.0.1"}}}};
  std::string session = server.Login();
  std::string token;
  Warden() {
    CreateAccount(server, session, "gateway-client", "role", "viewer");
    token = CreateToken(server, session, "gateway-client").token;
  }
};

// What every gateway must do, through the gateway on `port`.
void ExpectGatewayBehaviour(const std::string& gateway, int port, Warden& w, Upstream& upstream) {
  INFO(gateway);
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  const httplib::Headers auth = {{"Authorization", "Bearer " + w.token}};
  const int before = upstream.requests();

  // Allowed: the upstream gets the request with who is calling, and not the token.
  httplib::Headers forged = auth;
  forged.emplace("X-Warden-Principal-Name", "admin");
  forged.emplace("X-Warden-Principal-Id", "forged");
  auto ok = client.Get("/companies/c1?fields=name", forged);
  REQUIRE(ok);
  INFO(ok->body);
  REQUIRE(ok->status == 200);
  const nlohmann::json seen = nlohmann::json::parse(ok->body);
  CHECK(seen["path"] == "/companies/c1");
  CHECK(seen["headers"]["X-Warden-Principal-Name"] == "gateway-client");
  CHECK(seen["headers"]["X-Warden-Principal-Type"] == "service_account");
  CHECK(seen["headers"]["X-Warden-Principal-Id"] != "forged");
  CHECK(!seen["headers"].value("X-Warden-Token-Id", "").empty());
  CHECK(!seen["headers"].value("X-Warden-Decision-Id", "").empty());
  CHECK(!seen["headers"].contains("Authorization"));
  CHECK(upstream.requests() == before + 1);

  // Denied: 403 from warden, the upstream never asked.
  auto denied = client.Delete("/companies/c1", auth);
  REQUIRE(denied);
  CHECK(denied->status == 403);
  CHECK(denied->get_header_value("X-Warden-Reason") == "NO_MATCHING_ALLOW");
  auto unknown = client.Get("/admin/panel", auth);
  REQUIRE(unknown);
  CHECK(unknown->status == 403);
  CHECK(unknown->get_header_value("X-Warden-Reason") == "UNKNOWN_ROUTE");

  // A bad token and no token: 401 with the challenge.
  auto bad = client.Get("/companies/c1", {{"Authorization", "Bearer wdn_" + std::string(40, 'A')}});
  REQUIRE(bad);
  CHECK(bad->status == 401);
  CHECK(bad->get_header_value("WWW-Authenticate") == "Bearer realm=\"warden\"");
  CHECK(bad->get_header_value("X-Warden-Reason") == "TOKEN_INVALID");
  auto none = client.Get("/companies/c1");
  REQUIRE(none);
  CHECK(none->status == 401);
  CHECK(upstream.requests() == before + 1);

  // The decision log: newest first, the original method and path, the client address that
  // the trusted gateway forwarded.
  std::vector<nlohmann::json> rows = AllPages(w.server, w.session, "/v1/service-accounts/gateway-client/logs");
  REQUIRE(rows.size() >= 3);
  CHECK(rows[0]["context"]["method"] == "GET");
  CHECK(rows[0]["context"]["path"] == "/admin/panel");
  CHECK(rows[0]["reason"] == "UNKNOWN_ROUTE");
  CHECK(rows[1]["context"]["method"] == "DELETE");
  CHECK(rows[1]["context"]["path"] == "/companies/c1");
  CHECK(rows[1]["allowed"] == false);
  CHECK(rows[2]["context"]["method"] == "GET");
  CHECK(rows[2]["context"]["path"] == "/companies/c1");
  CHECK(rows[2]["resource_id"] == "c1");
  CHECK(rows[2]["allowed"] == true);
  CHECK(rows[2]["context"]["client_addr"] == "127.0.0.1");
}

TEST_CASE("nginx auth_request in front of an API asks warden about every request", "[gateway][nginx]") {
  REQUIRE(std::filesystem::exists("/usr/sbin/nginx"));  // scripts/dev.sh installs Debian's nginx
  Warden w;
  Upstream upstream;
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/tmp");
  const int port = FreePort();
  std::string conf = ReadFile(std::string(WARDEN_SOURCE_DIR) + "/examples/nginx/nginx.conf");
  conf = Replace(conf, "@LISTEN_PORT@", std::to_string(port));
  conf = Replace(conf, "@WARDEN_PORT@", std::to_string(w.server.port()));
  conf = Replace(conf, "@UPSTREAM_PORT@", std::to_string(upstream.port()));
  WriteFile(dir.path() + "/nginx.conf", conf);
  Child nginx({"/usr/sbin/nginx", "-p", dir.path(), "-c", dir.path() + "/nginx.conf", "-g", "daemon off;"}, {},
              dir.path() + "/nginx.log");
  const bool up = WaitForPort(port, nginx);
  INFO(nginx.Log());
  REQUIRE(up);
  ExpectGatewayBehaviour("nginx", port, w, upstream);
}

TEST_CASE("caddy forward_auth in front of an API asks warden about every request", "[gateway][caddy]") {
  REQUIRE(std::filesystem::exists("/usr/bin/caddy"));  // scripts/dev.sh installs Debian's caddy
  Warden w;
  Upstream upstream;
  TempDir dir;
  const int port = FreePort();
  Child caddy({"/usr/bin/caddy", "run", "--config", std::string(WARDEN_SOURCE_DIR) + "/examples/caddy/Caddyfile",
               "--adapter", "caddyfile"},
              {"CADDY_PORT=" + std::to_string(port), "WARDEN_PORT=" + std::to_string(w.server.port()),
               "UPSTREAM_PORT=" + std::to_string(upstream.port()), "HOME=" + dir.path(),
               "XDG_DATA_HOME=" + dir.path() + "/data", "XDG_CONFIG_HOME=" + dir.path() + "/config"},
              dir.path() + "/caddy.log");
  const bool up = WaitForPort(port, caddy);
  INFO(caddy.Log());
  REQUIRE(up);
  ExpectGatewayBehaviour("caddy", port, w, upstream);
  // Caddy hands warden's refusal to the client as written: the JSON error body too.
  httplib::Client client("127.0.0.1", port);
  auto denied = client.Delete("/companies/c1", {{"Authorization", "Bearer " + w.token}});
  REQUIRE(denied);
  CHECK(nlohmann::json::parse(denied->body, nullptr, false).value("error", nlohmann::json())["code"] ==
        "permission_denied");
}

}  // namespace
}  // namespace warden::testing
