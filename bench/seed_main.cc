// warden_seed: fills a warden data directory with service accounts and API tokens for the
// HTTP and memory benchmarks (bench/http.sh, bench/memory.sh).
//
// It writes through store::SqliteStore (the schema and migrations the server uses), so the
// rows are exactly what POST /v1/service-accounts and POST .../tokens would create:
//   - the default tenant (EnsureDefaultTenant),
//   - N accounts "bench-00000".., each holding the given ServiceAccountPolicy YAML (checked
//     first: it must compile against --policies; `account:` is set to each account's name),
//   - M tokens per account, secret_hash = HMAC-SHA256(pepper, secret) as
//     server/token_verifier.cc HashSecret computes it (pepper = WARDEN_TOKEN_PEPPER of the
//     server that will read this directory),
// and writes the plaintext tokens, one per line, to --tokens-out (the benchmark's input).
// No audit entries are written (these rows are fixtures, not admin actions).
//
// Accounts and tokens are written 5,000 accounts a transaction (SqliteStore::ImportAccounts).
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "engine/engine.h"
#include "store/sqlite_store.h"

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"warden_seed: create benchmark service accounts and tokens in a data directory"};
  std::string data_dir, policies_dir = "policies", policy_file, pepper, tokens_out, prefix = "wdn";
  std::string name_prefix = "bench-";
  int accounts = 10, tokens_per_account = 1;
  app.add_option("--data", data_dir, "Data directory (its warden.db is created or extended)")->required();
  app.add_option("--policies", policies_dir, "Policy tree the server will load (to check --policy)");
  app.add_option("--policy", policy_file, "ServiceAccountPolicy YAML given to every account")->required();
  app.add_option("--pepper", pepper, "Token pepper (the server's WARDEN_TOKEN_PEPPER)")->required();
  app.add_option("--accounts", accounts, "Number of accounts")->check(CLI::Range(1, 10'000'000));
  app.add_option("--tokens-per-account", tokens_per_account, "Tokens per account")->check(CLI::Range(1, 1000));
  app.add_option("--tokens-out", tokens_out, "File receiving the plaintext tokens, one per line")->required();
  app.add_option("--token-prefix", prefix, "Token prefix (the server's WARDEN_TOKEN_PREFIX)");
  app.add_option("--name-prefix", name_prefix, "Account names are <name-prefix><5 digits>");
  std::string bad_tokens_out;
  int bad_tokens = 1000;
  app.add_option("--bad-tokens-out", bad_tokens_out, "File receiving well-formed tokens nobody holds, one per line");
  app.add_option("--bad-tokens", bad_tokens, "How many (default 1000)")->check(CLI::Range(1, 10'000'000));
  CLI11_PARSE(app, argc, argv);

  if (!warden::IsValidTokenPrefix(prefix)) {
    std::fprintf(stderr, "warden_seed: invalid token prefix\n");
    return 2;
  }
  std::string yaml = ReadFile(policy_file);
  if (yaml.empty()) {
    std::fprintf(stderr, "warden_seed: cannot read %s\n", policy_file.c_str());
    return 2;
  }
  warden::engine::TreeResult tree = warden::engine::CompileTree(policies_dir);
  if (!tree.snapshot) {
    std::fprintf(stderr, "warden_seed: the policy tree %s does not compile (%zu errors)\n",
                 policies_dir.c_str(), tree.errors.size());
    return 1;
  }
  std::vector<warden::engine::CompileError> errors;
  auto doc = warden::engine::ParsePolicyDoc(yaml, policy_file, &errors);
  auto compiled = warden::engine::CompileAccountPolicy(*tree.snapshot, yaml, policy_file, "bench");
  if (!doc.ok() || !compiled.policy) {
    for (const auto& e : compiled.errors) {
      std::fprintf(stderr, "%s:%d:%d: %s\n", e.file.c_str(), e.line, e.column, e.message.c_str());
    }
    std::fprintf(stderr, "warden_seed: %s is not a valid ServiceAccountPolicy\n", policy_file.c_str());
    return 1;
  }

  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  chmod(data_dir.c_str(), 0700);
  auto& clock = warden::SystemClock::Get();
  const std::string db = data_dir + "/warden.db";
  auto store = warden::store::SqliteStore::Open(db, clock);
  if (!store.ok()) {
    std::fprintf(stderr, "warden_seed: cannot open %s: %s\n", db.c_str(), store.status().message().c_str());
    return 1;
  }
  auto tenant = (*store)->EnsureDefaultTenant();
  if (!tenant.ok()) {
    std::fprintf(stderr, "warden_seed: %s\n", tenant.status().message().c_str());
    return 1;
  }
  std::ofstream out(tokens_out, std::ios::trunc);
  if (!out) {
    std::fprintf(stderr, "warden_seed: cannot write %s\n", tokens_out.c_str());
    return 1;
  }

  const auto start = std::chrono::steady_clock::now();
  int64_t tokens_made = 0;
  // In batches of 5,000 accounts, each batch one transaction (SqliteStore::ImportAccounts):
  // 10,000 accounts with 100,000 tokens take seconds, not an fsync per row.
  constexpr int kBatch = 5000;
  for (int first = 0; first < accounts; first += kBatch) {
    std::vector<warden::store::ServiceAccount> batch;
    std::vector<warden::store::ApiTokenRecord> tokens;
    std::vector<std::string> plaintext;
    for (int i = first; i < std::min(accounts, first + kBatch); ++i) {
      char name[64];
      std::snprintf(name, sizeof name, "%s%05d", name_prefix.c_str(), i);
      warden::engine::PolicyDoc d = *doc;
      d.account = name;
      warden::store::ServiceAccount& account = batch.emplace_back();
      account.id = warden::NewUlid(clock);
      account.tenant_id = tenant->id;
      account.name = name;
      account.description = "benchmark account";
      account.policy_yaml = warden::engine::EmitPolicyYaml(d);
      account.created_by_type = "system";
      account.created_by_id = "warden_seed";
      for (int j = 0; j < tokens_per_account; ++j) {
        warden::ApiToken token = warden::NewApiToken(prefix);
        warden::store::ApiTokenRecord& record = tokens.emplace_back();
        record.id = token.id;
        record.tenant_id = tenant->id;
        record.account_id = account.id;
        record.name = "bench-" + std::to_string(j);
        record.secret_hash = warden::HmacSha256(pepper, token.secret);  // == TokenVerifier::HashSecret
        record.display_prefix = warden::TokenDisplayPrefix(token);
        record.created_by_type = "system";
        record.created_by_id = "warden_seed";
        plaintext.push_back(warden::FormatApiToken(token));
      }
    }
    warden::Status st = (*store)->ImportAccounts(&batch, tokens);
    if (!st.ok()) {
      std::fprintf(stderr, "warden_seed: accounts %d..: %s\n", first, st.message().c_str());
      return 1;
    }
    for (const std::string& t : plaintext) out << t << '\n';
    tokens_made += static_cast<int64_t>(tokens.size());
    std::fprintf(stderr, "warden_seed: %zu accounts, %lld tokens, %.1f s\n", static_cast<size_t>(first) + batch.size(),
                 static_cast<long long>(tokens_made), Since(start));
  }
  // Well-formed tokens (right prefix, length and CRC) that no account holds: the "bad token"
  // share of the benchmark's traffic.
  if (!bad_tokens_out.empty()) {
    std::ofstream bad(bad_tokens_out, std::ios::trunc);
    for (int i = 0; i < bad_tokens; ++i) bad << warden::FormatApiToken(warden::NewApiToken(prefix)) << '\n';
    if (!bad) {
      std::fprintf(stderr, "warden_seed: cannot write %s\n", bad_tokens_out.c_str());
      return 1;
    }
  }
  out.close();
  if (!out) {
    std::fprintf(stderr, "warden_seed: cannot write %s\n", tokens_out.c_str());
    return 1;
  }
  std::fprintf(stderr, "warden_seed: created %d accounts and %lld tokens in %s in %.1f s\n", accounts,
               static_cast<long long>(tokens_made), db.c_str(), Since(start));
  return 0;
}
