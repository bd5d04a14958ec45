// Test harness for end-to-end tests: starts the real `warden serve` binary on a free port
// with a temporary data directory and talks to it over real HTTP (httplib::Client).
// Not thread-safe per instance, except Client()/Call() which open their own connections.
#pragma once

#include <httplib.h>
#include <signal.h>
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace warden::testing {

// A fresh directory under /tmp, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Reply {
  int status = 0;  // 0 when the connection failed
  nlohmann::json json;  // null when the body is not JSON
  std::string body;
  httplib::Headers headers;
  std::string Header(const std::string& name) const;
};

class TestServer {
 public:
  struct Options {
    std::string data_dir;  // required (e.g. a TempDir's path)
    std::string policies_dir = std::string(WARDEN_SOURCE_DIR) + "/policies";
    std::string admin_password = "admin-password-1";
    std::map<std::string, std::string> env;  // extra WARDEN_* variables
    std::vector<std::string> args;           // extra flags for `warden serve`
    int max_open_files = 0;                  // RLIMIT_NOFILE of the server; 0 inherits ours
  };
  explicit TestServer(Options options);
  ~TestServer();  // SIGTERM, then waits

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Sends `sig` and waits for the process; returns its wait status.
  int Stop(int sig = SIGTERM);
  // Everything the server wrote to stderr (the access log) so far.
  std::string Log() const;
  // Its stdout (the startup lines).
  const std::string& StartupOutput() const { return startup_; }

  // One request (over https when the server has WARDEN_TLS_CERT). `bearer` adds
  // Authorization: Bearer. `content_type` defaults to JSON.
  Reply Call(const std::string& method, const std::string& path, const std::string& body = "",
             const std::string& bearer = "", const httplib::Headers& headers = {},
             const std::string& content_type = "application/json") const;
  Reply Get(const std::string& path, const std::string& bearer = "") const { return Call("GET", path, "", bearer); }
  Reply Post(const std::string& path, const nlohmann::json& body, const std::string& bearer = "") const {
    return Call("POST", path, body.dump(), bearer);
  }
  Reply Patch(const std::string& path, const nlohmann::json& body, const std::string& bearer = "") const {
    return Call("PATCH", path, body.dump(), bearer);
  }
  Reply Delete(const std::string& path, const std::string& bearer = "") const { return Call("DELETE", path, "", bearer); }

  // Logs in and returns the session token (fails the test on error).
  std::string Login(const std::string& email = "admin@localhost", const std::string& password = "") const;
  const Options& options() const { return options_; }

 private:
  Options options_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string startup_;
  std::string log_path_;
};

// A self-signed certificate for 127.0.0.1 in `dir`. A TestServer given them as
// WARDEN_TLS_CERT / WARDEN_TLS_KEY serves https, and its Call() speaks https.
struct TlsFiles {
  std::string cert, key;
};
TlsFiles MakeTestCertificate(const std::string& dir);

// Runs `command` through the shell and returns its exit code; stdout goes to *out.
int RunCommand(const std::string& command, std::string* out);

// A TCP port, below the ephemeral range, that was free on every address a moment ago, for a
// server a test starts itself (nginx, caddy, serve.sh): it binds it right after.
int FreePort();

}  // namespace warden::testing
