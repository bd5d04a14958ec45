// The decision log's cost per row, off the check path: the mover (journal -> decision_chunk)
// and the history read. Run: build/bench/store_bench (bench/README in docs/benchmarks.md).
//
// BM_MoveDecisions/N: the check path appends rows two at a time (one request of the
// benchmark's shape); every N rows (N = what the mover finds in one pass under load: about
// 900 every 10 ms at 45k checks a second) one FlushDecisions() moves them. Time and
// instructions are per moved row; the append is excluded (PauseTiming).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/clock.h"
#include "store/sqlite_store.h"

namespace {

using warden::store::DecisionRow;
using warden::store::SqliteStore;

DecisionRow BenchRow(bool allowed) {
  DecisionRow d;
  d.tenant_id = "default";
  d.principal_type = "service_account";
  d.principal_id = "01JCQ2ZB4T4V0H6N5A5C4W7Q1R";
  d.principal_name = "crm-sync";
  d.token_id = "01JCQ2ZB4T4V0H6N5A5C4W7Q1S";
  d.model = "company";
  d.action = allowed ? "view" : "update";
  d.resource_id = "c1";
  d.allowed = allowed;
  d.reason = allowed ? "ALLOW_RULE" : "NO_MATCHING_ALLOW";
  d.rule = allowed ? "service_accounts/crm-sync#0" : "";
  d.policy_revision = "3f9a1c2b7d4e";
  d.client_addr = "127.0.0.1";
  d.method = "GET";
  d.path = "/companies/c1";
  d.request_id = "bench-1";
  d.latency_us = 12;
  return d;
}

class TempStore {
 public:
  TempStore() {
    char tmpl[] = "/tmp/warden-store-bench-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto store = SqliteStore::Open(dir_ + "/w.db", clock_);
    if (!store.ok()) std::abort();
    store_ = std::move(store).value();
  }
  ~TempStore() {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  SqliteStore& store() { return *store_; }

 private:
  std::string dir_;
  warden::SystemClock clock_;
  std::unique_ptr<SqliteStore> store_;
};

void BM_MoveDecisions(benchmark::State& state) {
  TempStore t;
  const int64_t per_pass = state.range(0);
  for (auto _ : state) {
    state.PauseTiming();
    for (int64_t i = 0; i < per_pass; i += 2) {
      std::vector<DecisionRow> rows = {BenchRow(true), BenchRow(false)};
      if (!t.store().AppendDecisions(&rows).ok()) std::abort();
    }
    state.ResumeTiming();
    if (!t.store().FlushDecisions().ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * per_pass);
}
BENCHMARK(BM_MoveDecisions)->Arg(100)->Arg(900)->Arg(4500)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
