// The warden executable: the only place that wires engine/, store/ and server/ together.
#include <fcntl.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/crypto.h"
#include "common/ids.h"
#include "server/app.h"
#include "server/config.h"
#include "server/ops/policy_cli.h"
#include "store/store_factory.h"

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
  umask(0077);  // everything warden creates (database, journal, pepper) is owner-only

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
  auto store = warden::store::OpenStore(config.StoreLocation(), clock,
                                        {.local_dir = config.data_dir,
                                         .decision_chunk_age_ms = config.decision_chunk_age_ms,
                                         .test_decision_backlog_bytes = config.test_decision_backlog_bytes});
  if (!store.ok()) {
    std::fprintf(stderr, "warden: cannot open %s: %s\n", warden::store::RedactLocation(config.StoreLocation()).c_str(),
                 store.status().message().c_str());
    return 1;
  }
  warden::server::App app(config, store->store.get(), *pepper, clock, store->maintenance);
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
  std::printf("warden serving %s://%s:%d (policies %s, data %s, store %s)\n",
              config.tls_cert.empty() ? "http" : "https", config.Host().c_str(), *port,
              config.policies_dir.c_str(), config.data_dir.c_str(), store->description.c_str());
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

// `warden admin reset-password`: the operator's way back in, with the data directory and
// without the API (a locked-out tenant, a forgotten password). Works beside a running server:
// it changes only admin rows, in SQLite transactions, and never opens the decision journal.
// The server reads users and sessions from the store on every request, so the change holds
// at once.
int ResetPassword(const std::string& data_dir, const std::string& store_location, const std::string& email,
                  const std::string& tenant, bool restore_admin) {
  namespace store = warden::store;
  const std::string db = store_location.empty() ? data_dir + "/warden.db" : store_location;
  if (store_location.empty() && !std::filesystem::exists(db)) {
    std::fprintf(stderr, "warden: no database at %s (start warden once with --data %s)\n", db.c_str(), data_dir.c_str());
    return 1;
  }
  auto& clock = warden::SystemClock::Get();
  auto opened = store::OpenStore(db, clock, {.decision_log = false});
  if (!opened.ok()) {
    std::fprintf(stderr, "warden: cannot open %s: %s\n", store::RedactLocation(db).c_str(), opened.status().message().c_str());
    return 1;
  }
  store::Store& st = *opened->store;
  const std::string password = warden::RandomBase62(20);
  StatusOr<std::string> hash = warden::HashPassword(password);
  if (!hash.ok()) {
    std::fprintf(stderr, "warden: %s\n", hash.status().message().c_str());
    return 1;
  }
  const struct passwd* pw = getpwuid(geteuid());
  store::AuditEntry audit;
  audit.tenant_id = tenant;
  audit.actor_type = "operator";
  audit.actor_id = std::string("local:") + (pw != nullptr ? pw->pw_name : std::to_string(geteuid()));
  audit.target_type = "user";
  audit.target_name = email;
  audit.details = {{"actor_name", "warden admin reset-password"}, {"restore_admin", restore_admin}};
  StatusOr<store::User> user = st.FindUserByEmail(tenant, email);
  if (!user.ok() && user.status().code() == warden::StatusCode::kNotFound && restore_admin) {
    store::User created;
    created.tenant_id = tenant;
    created.email = email;
    created.name = "Administrator";
    created.roles = {"admin"};
    created.password_hash = *hash;
    audit.action = "user.created";
    user = st.CreateUser(created, &audit);
  } else if (user.ok()) {
    store::UserUpdate update;
    update.password_hash = *hash;
    update.enabled = true;
    if (restore_admin && std::find(user->roles.begin(), user->roles.end(), "admin") == user->roles.end()) {
      std::vector<std::string> roles = user->roles;
      roles.push_back("admin");
      update.roles = roles;
    }
    audit.action = "user.password_reset";
    audit.target_id = user->id;
    user = st.UpdateUser(tenant, user->id, update, &audit);
    if (user.ok()) (void)st.DeleteSessionsOfUser(tenant, user->id);
  }
  if (!user.ok()) {
    if (user.status().code() == warden::StatusCode::kNotFound) {
      std::fprintf(stderr, "warden: no user %s in tenant %s (add --restore-admin to create it as an admin)\n",
                   email.c_str(), tenant.c_str());
    } else {
      std::fprintf(stderr, "warden: %s\n", user.status().message().c_str());
    }
    return 1;
  }
  std::string roles;
  for (const auto& r : user->roles) roles += (roles.empty() ? "" : ",") + r;
  std::printf("new password for %s (roles %s, enabled): %s\n(shown once; existing sessions were ended)\n",
              email.c_str(), roles.c_str(), password.c_str());
  return 0;
}

}  // namespace

// jemalloc's options (CMakeLists.txt links the server with it; the symbol is inert under
// glibc's malloc): pages freed go back to the kernel at once instead of after jemalloc's 10 s
// decay. With 10,000 accounts and 100,000 tokens that made the peak resident memory 78 MiB
// instead of 93 at no measured cost in req/s (docs/benchmarks.md, "Traffic shapes, session
// 11"). MALLOC_CONF in the environment still applies on top.
extern "C" const char* malloc_conf;
const char* malloc_conf = "dirty_decay_ms:0,muzzy_decay_ms:0";

int main(int argc, char** argv) {
  CLI::App app{"warden: authorization for service accounts and API tokens"};
  app.require_subcommand(1);
  int exit_code = 0;
  warden::server::AddPolicyCommands(app, &exit_code);

  warden::server::Config config;
  std::string config_file, listen, data, policies, store_location;
  CLI::App* serve = app.add_subcommand("serve", "Run the HTTP server");
  serve->add_option("--config", config_file, "YAML config file");
  serve->add_option("--listen", listen, "HOST:PORT to listen on (default 127.0.0.1:8080; port 0 picks a free one)");
  serve->add_option("--data", data, "Data directory (default ./data)");
  serve->add_option("--policies", policies, "Policy directory (default ./policies)");
  serve->add_option("--store", store_location, "postgres://... to share a PostgreSQL store between replicas (also WARDEN_STORE); default SQLite in the data directory");
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
    if (!store_location.empty()) config.store = store_location;
    Status valid = warden::server::Validate(config);
    if (!valid.ok()) {
      std::fprintf(stderr, "warden: invalid configuration: %s\n", valid.message().c_str());
      exit_code = 2;
      return;
    }
    exit_code = Serve(config, config_file);
  });
  CLI::App* admin = app.add_subcommand("admin", "Operator commands that work on the data directory directly");
  admin->require_subcommand(1);
  std::string reset_data = "./data", reset_store, reset_email, reset_tenant = warden::store::kDefaultTenantId;
  bool restore_admin = false;
  CLI::App* reset = admin->add_subcommand("reset-password", "Give a user a new password (printed once), whether the server runs or not");
  reset->add_option("--data", reset_data, "Data directory (default ./data)");
  reset->add_option("--store", reset_store, "The store URL when it is PostgreSQL (as serve --store)");
  reset->add_option("--tenant", reset_tenant, "Tenant id (default: default)");
  reset->add_flag("--restore-admin", restore_admin, "Also give the user the admin role and enable it (creating the user when absent)");
  reset->add_option("email", reset_email, "The user's email")->required();
  reset->callback([&] { exit_code = ResetPassword(reset_data, reset_store, reset_email, reset_tenant, restore_admin); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a "parse error" with exit code 0; every usage error exits 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
