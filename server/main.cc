// The warden executable: the only place that wires engine/, store/ and server/ together.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/crypto.h"
#include "server/app.h"
#include "server/config.h"
#include "server/policy_cli.h"
#include "store/sqlite_store.h"

namespace {

using warden::Status;
using warden::StatusOr;

// The token pepper: from config, else <data>/pepper (created 0600 on first start).
StatusOr<std::string> LoadPepper(const warden::server::Config& config) {
  if (!config.token_pepper.empty()) return config.token_pepper;
  const std::string path = config.data_dir + "/pepper";
  std::ifstream in(path);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    std::string pepper = ss.str();
    while (!pepper.empty() && (pepper.back() == '\n' || pepper.back() == '\r')) pepper.pop_back();
    if (pepper.size() < 32) return warden::FailedPreconditionError(path + " is too short to be a pepper");
    return pepper;
  }
  std::string pepper = warden::RandomHex(32);
  mode_t old = umask(0077);
  std::ofstream out(path, std::ios::trunc);
  out << pepper << "\n";
  out.close();
  umask(old);
  if (!out) return warden::UnavailableError("cannot write " + path);
  chmod(path.c_str(), 0600);
  return pepper;
}

// One process per data directory: an exclusive flock on <data>/lock, which holds the owner's
// pid. The lock lives as long as the descriptor, which is never closed: it goes with the
// process (even when killed). Returns false, having said who holds it, when it is taken.
bool LockDataDirectory(const std::string& data_dir) {
  const std::string path = data_dir + "/lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "warden: cannot open %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {0};
    const ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
    std::string owner(pid, n > 0 ? static_cast<size_t>(n) : 0);
    while (!owner.empty() && (owner.back() == '\n' || owner.back() == ' ')) owner.pop_back();
    std::fprintf(stderr, "data directory %s is in use (pid %s)\n", data_dir.c_str(), owner.empty() ? "?" : owner.c_str());
    ::close(fd);
    return false;
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    std::fprintf(stderr, "warden: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  return true;  // fd stays open on purpose
}

int Serve(warden::server::Config config, const std::string& config_file) {
  // glibc gives each of the many HTTP threads its own malloc arena by default; a few shared
  // arenas keep the resident set small (the budget is 64 MiB with 100,000 cached tokens).
  mallopt(M_ARENA_MAX, 2);
  using warden::server::ApplyConfigFile;
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // every thread inherits this; one waits below
  signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    std::fprintf(stderr, "warden: cannot create data directory %s: %s\n", config.data_dir.c_str(), ec.message().c_str());
    return 1;
  }
  chmod(config.data_dir.c_str(), 0700);
  if (!LockDataDirectory(config.data_dir)) return 1;
  StatusOr<std::string> pepper = LoadPepper(config);
  if (!pepper.ok()) {
    std::fprintf(stderr, "warden: %s\n", pepper.status().message().c_str());
    return 1;
  }
  auto& clock = warden::SystemClock::Get();
  auto store = warden::store::SqliteStore::Open(config.DatabasePath(), clock);
  if (!store.ok()) {
    std::fprintf(stderr, "warden: cannot open %s: %s\n", config.DatabasePath().c_str(), store.status().message().c_str());
    return 1;
  }
  warden::store::SqliteStore* sqlite = store->get();
  warden::server::App app(config, sqlite, *pepper, clock, [sqlite] { return sqlite->Checkpoint(); });
  std::string generated_password;
  Status init = app.Init(&generated_password);
  if (!init.ok()) {
    std::fprintf(stderr, "warden: cannot start: %s\n", init.message().c_str());
    return 1;
  }
  if (!generated_password.empty()) {
    std::printf("created the admin user %s with the password: %s\n"
                "(shown once; set WARDEN_ADMIN_PASSWORD on first start to choose it)\n",
                config.admin_email.c_str(), generated_password.c_str());
  }
  StatusOr<int> port = app.Bind();
  if (!port.ok()) {
    std::fprintf(stderr, "warden: %s\n", port.status().message().c_str());
    return 1;
  }
  std::printf("warden serving %s://%s:%d (policies %s, data %s)\n",
              config.tls_cert.empty() ? "http" : "https", config.Host().c_str(), *port,
              config.policies_dir.c_str(), config.data_dir.c_str());
  std::fflush(stdout);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "warden: signal %d, shutting down\n", sig);
    app.Stop();
  });
  app.Serve();
  // Serve() also returns when the listener fails; make sure the waiter ends.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  app.Stop();
  std::fprintf(stderr, "warden: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"warden: authorization for service accounts and API tokens"};
  app.require_subcommand(1);
  int exit_code = 0;
  warden::server::AddPolicyCommands(app, &exit_code);

  warden::server::Config config;
  std::string config_file, listen, data, policies;
  CLI::App* serve = app.add_subcommand("serve", "Run the HTTP server");
  serve->add_option("--config", config_file, "YAML config file");
  serve->add_option("--listen", listen, "HOST:PORT to listen on (default 127.0.0.1:8080; port 0 picks a free one)");
  serve->add_option("--data", data, "Data directory (default ./data)");
  serve->add_option("--policies", policies, "Policy directory (default ./policies)");
  serve->callback([&] {
    if (!config_file.empty()) {
      Status st = warden::server::ApplyConfigFile(config_file, &config);
      if (!st.ok()) {
        std::fprintf(stderr, "warden: %s\n", st.message().c_str());
        exit_code = 2;
        return;
      }
    }
    Status env = warden::server::ApplyEnvironment(warden::server::ProcessEnvironment(), &config);
    if (!env.ok()) {
      std::fprintf(stderr, "warden: %s\n", env.message().c_str());
      exit_code = 2;
      return;
    }
    if (!listen.empty()) config.listen = listen;
    if (!data.empty()) config.data_dir = data;
    if (!policies.empty()) config.policies_dir = policies;
    Status valid = warden::server::Validate(config);
    if (!valid.ok()) {
      std::fprintf(stderr, "warden: invalid configuration: %s\n", valid.message().c_str());
      exit_code = 2;
      return;
    }
    exit_code = Serve(config, config_file);
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a "parse error" with exit code 0; every usage error exits 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
