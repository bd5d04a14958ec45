#include "tests/server/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace warden::testing {

TempDir::TempDir() {
  char tmpl[] = "/tmp/warden-test-XXXXXX";
  char* p = mkdtemp(tmpl);
  REQUIRE(p != nullptr);
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string Reply::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

TestServer::TestServer(Options options) : options_(std::move(options)) {
  REQUIRE(!options_.data_dir.empty());
  log_path_ = options_.data_dir + ".log";
  int out_pipe[2];
  REQUIRE(pipe(out_pipe) == 0);
  pid_ = fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    dup2(out_pipe[1], 1);
    int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(log, 2);
    close(out_pipe[0]);
    close(out_pipe[1]);
    setenv("WARDEN_ADMIN_PASSWORD", options_.admin_password.c_str(), 1);
    setenv("WARDEN_WATCH_POLICIES", "true", 0);
    // Tests read the database file from outside (DecisionRowCount waits until every row is
    // in decision_chunk): chunks are written 100 ms after they open, not 5 s.
    setenv("WARDEN_DECISION_CHUNK_AGE_MS", "100", 0);
    for (const auto& [k, v] : options_.env) setenv(k.c_str(), v.c_str(), 1);
    if (options_.max_open_files > 0) {
      const rlimit limit{static_cast<rlim_t>(options_.max_open_files), static_cast<rlim_t>(options_.max_open_files)};
      if (setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(126);
    }
    std::vector<std::string> args = {WARDEN_BINARY, "serve", "--listen", "127.0.0.1:0",
                                     "--data", options_.data_dir, "--policies", options_.policies_dir};
    args.insert(args.end(), options_.args.begin(), options_.args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  // Read stdout until the "warden serving http://127.0.0.1:PORT" line (or EOF on failure).
  FILE* out = fdopen(out_pipe[0], "r");
  char line[1024];
  while (fgets(line, sizeof line, out)) {
    startup_ += line;
    if (std::strstr(line, "warden serving http")) {
      std::string s(line);
      auto host = s.find("127.0.0.1:");
      REQUIRE(host != std::string::npos);
      port_ = std::atoi(s.c_str() + host + 10);
      break;
    }
  }
  // Keep draining stdout in the background so the child never blocks on a full pipe.
  std::thread([out] {
    char buf[1024];
    while (fgets(buf, sizeof buf, out)) {
    }
    fclose(out);
  }).detach();
  if (port_ == 0) {
    INFO("server failed to start; stdout: " << startup_ << " log: " << Log());
    Stop(SIGKILL);
    FAIL("warden serve did not start");
  }
}

TestServer::~TestServer() {
  if (pid_ > 0) Stop(SIGTERM);
  std::remove(log_path_.c_str());
}

int TestServer::Stop(int sig) {
  if (pid_ <= 0) return 0;
  kill(pid_, sig);
  int status = 0;
  for (int i = 0; i < 300; ++i) {  // up to 30 s (sanitizer builds stop slowly)
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

std::string TestServer::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Reply TestServer::Call(const std::string& method, const std::string& path, const std::string& body,
                       const std::string& bearer, const httplib::Headers& headers,
                       const std::string& content_type) const {
  std::unique_ptr<httplib::ClientImpl> tls_client, plain_client;
  if (options_.env.count("WARDEN_TLS_CERT")) {
    auto ssl = std::make_unique<httplib::SSLClient>("127.0.0.1", port_);
    ssl->enable_server_certificate_verification(false);  // the tests' self-signed certificate
    tls_client = std::move(ssl);
  } else {
    plain_client = std::make_unique<httplib::ClientImpl>("127.0.0.1", port_);
  }
  httplib::ClientImpl& client = tls_client ? *tls_client : *plain_client;
  client.set_read_timeout(60, 0);
  httplib::Headers h = headers;
  if (!bearer.empty()) h.emplace("Authorization", "Bearer " + bearer);
  httplib::Result r(nullptr, httplib::Error::Unknown);
  if (method == "GET") r = client.Get(path.c_str(), h);
  else if (method == "POST") r = client.Post(path.c_str(), h, body, content_type.c_str());
  else if (method == "PUT") r = client.Put(path.c_str(), h, body, content_type.c_str());
  else if (method == "PATCH") r = client.Patch(path.c_str(), h, body, content_type.c_str());
  else if (method == "DELETE") r = client.Delete(path.c_str(), h);
  else if (method == "HEAD") r = client.Head(path.c_str(), h);
  Reply reply;
  if (!r) return reply;
  reply.status = r->status;
  reply.body = r->body;
  reply.headers = r->headers;
  reply.json = nlohmann::json::parse(r->body, nullptr, false);
  if (reply.json.is_discarded()) reply.json = nullptr;
  return reply;
}

std::string TestServer::Login(const std::string& email, const std::string& password) const {
  Reply r = Post("/v1/auth/login", {{"email", email}, {"password", password.empty() ? options_.admin_password : password}});
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json["token"].get<std::string>();
}

int RunCommand(const std::string& command, std::string* out) {
  FILE* p = popen(command.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TlsFiles MakeTestCertificate(const std::string& dir) {
  TlsFiles files{dir + "/cert.pem", dir + "/key.pem"};
  std::string out;
  int rc = RunCommand("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout " + files.key +
                          " -out " + files.cert + " 2>&1",
                      &out);
  INFO(out);
  REQUIRE(rc == 0);
  return files;
}

int FreePort() {
  // A port the kernel hands out for bind(0) is in the ephemeral range, which every outgoing
  // connection on the machine draws from too: between this probe and the child's bind, a client
  // elsewhere can take it (CI saw caddy fail with "address already in use"). Below that range
  // only listeners that name their port compete, so probe there, from a per-process start.
  int low = 32768;
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  range >> low;
  const int first = 10000;
  const int span = low - first;
  REQUIRE(span > 1000);
  static unsigned next = static_cast<unsigned>(::getpid()) * 7919u +
                         static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count());
  for (int tries = 0; tries < span; ++tries) {
    const int port = first + static_cast<int>(next++ % static_cast<unsigned>(span));
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool bindable = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (bindable) return port;
  }
  FAIL("no free port below the ephemeral range");
  return 0;
}

}  // namespace warden::testing
