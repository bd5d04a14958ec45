// examples/authzen/serve.sh: serves a scenario on the port it is given, with public_url set
// and a PEP token in DATA_DIR/pep-token, and stops with its server on SIGTERM.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tests/server/harness.h"

namespace warden::testing {
namespace {

TEST_CASE("serve.sh serves a scenario with a PEP token and public_url", "[authzen][serve]") {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  const int port = FreePort();
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setpgid(0, 0);  // its own group: the script and the server stop together
    setenv("WARDEN_BIN", WARDEN_BINARY, 1);
    unsetenv("WARDEN_TLS_CERT");
    const std::string script = std::string(WARDEN_SOURCE_DIR) + "/examples/authzen/serve.sh";
    const std::string log = dir.path() + "/serve.log";
    FILE* out = freopen(log.c_str(), "w", stdout);
    (void)out;
    dup2(1, 2);
    execl("/bin/bash", "bash", script.c_str(), "idp", std::to_string(port).c_str(), data.c_str(), nullptr);
    _exit(127);
  }
  setpgid(pid, pid);
  std::string token;
  for (int i = 0; i < 600 && token.empty(); ++i) {
    std::ifstream in(data + "/pep-token");
    if (in) std::getline(in, token);
    if (token.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO(dir.path());
  REQUIRE(!token.empty());

  httplib::Client client("127.0.0.1", port);
  auto meta = client.Get("/.well-known/authzen-configuration");
  REQUIRE(meta);
  CHECK(nlohmann::json::parse(meta->body)["policy_decision_point"] == "http://127.0.0.1:" + std::to_string(port));
  const nlohmann::json body = {{"subject", {{"type", "user"}, {"id", "carol"}}},
                               {"action", {{"name", "delete"}}},
                               {"resource", {{"type", "record"}}}};
  auto found = client.Post("/access/v1/search/resource", {{"Authorization", "Bearer " + token}}, body.dump(),
                           "application/json");
  REQUIRE(found);
  INFO(found->body);
  CHECK(found->status == 200);
  CHECK(nlohmann::json::parse(found->body)["results"].size() == 3);

  kill(-pid, SIGTERM);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
}

}  // namespace
}  // namespace warden::testing
