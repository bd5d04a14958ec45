#!/usr/bin/env bash
# Cost as the work grows (issue 13 point 3): POST /v1/check with 10k, 100k and 1M tokens in
# the token cache, the first pass over every token after a restart against a warm pass, and
# how fast retention removes rows beside the rate they come in.
#
#   bench/costs.sh                                  # build ./build, sizes 10k 100k 1M
#   SKIP_BUILD=1 BUILD_DIR=build-rel SIZES="10000 100000" REPS=1 bench/costs.sh
#
# Per size N (SIZES, in tokens; N/TPA accounts of TPA tokens each), one server:
#   seed     warden_seed on /dev/shm, then the database copied to a data directory on disk
#            (as bench/memory.sh; the server runs on disk)
#   start    warden on a free port, default configuration (access log on, to a file)
#   first    one pass over the N tokens in order (bench/check.lua rotate, one wrk thread,
#            WARDEN_BENCH_STOP_AFTER=N): every token verified once; its token-cache misses
#            (/metrics) must be N
#   load     REPS x wrk $LOAD, uniform over every account and token (so over every cached
#            token): req/s, p50, p99; the hit ratio over the run (cache hits and misses from
#            /metrics); decision rows and bytes of the decision tables per decision (dbstat,
#            after the mover has stored every row)
#   restart  SIGTERM, then the same binary on the same data directory (the cache is empty,
#            the file is in the page cache)
#   cold     the first pass after the restart, as `first`
#   warm     the same pass again, every token cached
# The token cache has no capacity bound (server/check/token_verifier.h: a hash map, entries
# leave only on invalidation), so the hit ratio of the load runs is 100% at every size if
# nothing is evicted; the script prints it rather than assuming it.
# Then, unless RETENTION=0, retention's pace: a server with one account and one token,
# WARDEN_RETENTION_ROWS=$RETENTION_ROWS (the account is soon over its budget), wrk $LOAD
# for $RETENTION_SECONDS instead of its -d: decisions appended a second against rows pruned a second
# (warden_decision_log_rows_total, warden_decision_log_pruned_total); the server prunes
# every 10 s, at most 20 batches of 1,000 rows (server/app.cc).
# The 1-minute load average is printed after every wrk run (the host is shared).
#
# Env: BUILD_DIR=build (configured Release with Ninja when absent)  SKIP_BUILD=1
#      SIZES="10000 100000 1000000"  TPA=10  REPS=2
#      LOAD="-t2 -c16 -d15s"  PASS="-t1 -c16 -d900s" (-d only bounds a pass: it ends at N answers)
#      RETENTION=1  RETENTION_ROWS=20000  RETENTION_SECONDS=60
#      SEED_ROOT=/dev/shm  KEEP=1 (keep the temp dir under /tmp)
# Exit 1 on any non-200, wrong decision, socket error, a pass that missed tokens, or load runs
# that read the store (cache misses).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) BUILD=$BUILD_DIR ;; *) BUILD=$ROOT/$BUILD_DIR ;; esac
SIZES=${SIZES:-"10000 100000 1000000"}
TPA=${TPA:-10}
REPS=${REPS:-2}
LOAD=${LOAD:-"-t2 -c16 -d15s"}
PASS=${PASS:-"-t1 -c16 -d900s"}
RETENTION=${RETENTION:-1}
RETENTION_ROWS=${RETENTION_ROWS:-20000}
RETENTION_SECONDS=${RETENTION_SECONDS:-60}
SEED_ROOT=${SEED_ROOT:-/dev/shm}
for tool in wrk sqlite3 curl python3 openssl; do
  command -v $tool >/dev/null || { echo "costs.sh: $tool is not installed" >&2; exit 1; }
done
[[ $PASS == *-t1\ * ]] || { echo "costs.sh: PASS must use one wrk thread (-t1): one counter walks the tokens" >&2; exit 2; }
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  [[ -f $BUILD/build.ninja || -f $BUILD/Makefile ]] || cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$BUILD" --target warden warden_seed -j2 >&2
fi

WORK=$(mktemp -d /tmp/warden-costs-bench.XXXXXX)
SEED_DIR=$(mktemp -d "$SEED_ROOT/warden-costs-seed.XXXXXX")
RAW=$WORK/raw.txt; : > "$RAW"
PID=""
source "$ROOT/bench/lib.sh"  # stop_pid
STOP_WAIT=300  # a server holding 1M tokens' chunks may take seconds to write them on SIGTERM
cleanup() { stop_pid; rm -rf "$SEED_DIR"; [[ "${KEEP:-0}" == 1 ]] && echo "kept $WORK" >&2 || rm -rf "$WORK"; }
trap cleanup EXIT

PEPPER=$(openssl rand -hex 32)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start_server() {  # data-dir [extra VAR=value...] -> PID, URL
  local data=$1; shift
  local port; port=$(free_port)
  URL=http://127.0.0.1:$port
  env WARDEN_LISTEN=127.0.0.1:$port WARDEN_DATA="$data" WARDEN_POLICIES="$ROOT/policies" \
    WARDEN_TOKEN_PEPPER="$PEPPER" WARDEN_ADMIN_PASSWORD=bench-admin-password-$$ WARDEN_WATCH_POLICIES=false "$@" \
    "$BUILD/warden" serve >> "$WORK/warden.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 300); do curl -sf "$URL/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "costs.sh: warden did not start:" >&2; tail -20 "$WORK/warden.log" >&2; exit 1
}
metric() { curl -s "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
mem_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PID/status"; }
load1() { cut -d' ' -f1 /proc/loadavg; }
decision_rows() { sqlite3 "$1/warden.db" 'SELECT COALESCE(SUM(row_count), 0) FROM decision_chunk'; }
decision_bytes() { sqlite3 "$1/warden.db" "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN ('decision_chunk', 'decision_chunk_first', 'decision_chunk_principal', 'decision_chunk_tenant')"; }
settle() {  # until every appended row is in decision_chunk (the backlog gauge is 0), at most 5 min
  for _ in $(seq 1 3000); do
    [[ $(metric warden_decision_journal_backlog_bytes) == 0 ]] && return
    sleep 0.1
  done
  echo "costs.sh: the decision journal did not drain in 5 minutes" >&2
}
run_wrk() {  # size phase rep wrk-args -> one RAW line (RESULT fields, cache deltas, load, memory)
  local size=$1 phase=$2 rep=$3 args=$4 h0 m0 o0 res
  h0=$(metric warden_token_cache_hits_total) m0=$(metric warden_token_cache_misses_total)
  o0=$(metric warden_decision_log_overloaded_total)
  res=$(wrk $args --latency -s "$ROOT/bench/check.lua" "$URL" | grep '^RESULT')
  echo "$size $phase $rep ${res#RESULT } hits=$(( $(metric warden_token_cache_hits_total) - h0 ))" \
    "misses=$(( $(metric warden_token_cache_misses_total) - m0 ))" \
    "overloaded=$(( $(metric warden_decision_log_overloaded_total) - o0 )) load=$(load1)" \
    "rss_kib=$(mem_kib VmRSS) hwm_kib=$(mem_kib VmHWM)" | tee -a "$RAW"
}
pass() {  # size phase: one pass over every token, in order, one wrk thread
  WARDEN_BENCH_SHAPE=rotate WARDEN_BENCH_THREADS=1 WARDEN_BENCH_STOP_AFTER=$NTOK run_wrk "$1" "$2" 1 "$PASS"
}

echo "# warden $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- server store engine common || echo -dirty) | $(nproc) CPUs | load $(cut -d' ' -f1-3 /proc/loadavg) | $(date -u +%FT%TZ)"
export WARDEN_BENCH_TPA=$TPA WARDEN_BENCH_BATCH=2
for size in $SIZES; do
  accounts=$(( size / TPA ))
  rm -rf "${SEED_DIR:?}"/* "$WORK/data"
  t0=$(date +%s.%N)
  "$BUILD/bench/warden_seed" --data "$SEED_DIR" --policies "$ROOT/policies" --policy "$ROOT/bench/bench-account.yaml" \
    --pepper "$PEPPER" --accounts "$accounts" --tokens-per-account "$TPA" --tokens-out "$WORK/tokens.txt" 2>&1 | tail -1
  mkdir -p "$WORK/data" && chmod 700 "$WORK/data"
  cp "$SEED_DIR"/warden.db* "$WORK/data/"
  rm -rf "${SEED_DIR:?}"/*
  export WARDEN_BENCH_TOKENS=$WORK/tokens.txt
  NTOK=$(wc -l < "$WORK/tokens.txt")
  echo "## $size: $accounts accounts, $NTOK tokens seeded and copied in $(python3 -c "import time; print(f'{time.time() - $t0:.1f}')") s; database $(du -h "$WORK/data/warden.db" | cut -f1)"
  echo "$size seed 0 seconds=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")" >> "$RAW"

  start_server "$WORK/data"
  pass "$size" first
  settle
  rows0=$(decision_rows "$WORK/data") bytes0=$(decision_bytes "$WORK/data")
  for rep in $(seq 1 "$REPS"); do
    WARDEN_BENCH_SHAPE=uniform WARDEN_BENCH_ACCOUNTS=$accounts run_wrk "$size" load "$rep" "$LOAD"
  done
  settle
  echo "$size stored 0 rows=$(( $(decision_rows "$WORK/data") - rows0 )) bytes=$(( $(decision_bytes "$WORK/data") - bytes0 ))" >> "$RAW"
  stop_pid
  start_server "$WORK/data"
  pass "$size" cold
  pass "$size" warm
  stop_pid
  echo "$size database 0 bytes=$(du -cb "$WORK/data"/warden.db* | tail -1 | cut -f1)" >> "$RAW"
done

if [[ $RETENTION == 1 ]]; then
  rm -rf "$WORK/data"
  "$BUILD/bench/warden_seed" --data "$WORK/data" --policies "$ROOT/policies" --policy "$ROOT/bench/bench-account.yaml" \
    --pepper "$PEPPER" --accounts 1 --tokens-per-account 1 --tokens-out "$WORK/tokens.txt" 2>&1 | tail -1
  export WARDEN_BENCH_TOKENS=$WORK/tokens.txt WARDEN_BENCH_TPA=1
  start_server "$WORK/data" WARDEN_RETENTION_ROWS="$RETENTION_ROWS"
  r0=$(metric warden_decision_log_rows_total) p0=$(metric warden_decision_log_pruned_total)
  WARDEN_BENCH_SHAPE=one run_wrk retention load 1 "$(sed 's/-d[0-9]*s//' <<<"$LOAD") -d${RETENTION_SECONDS}s"
  sleep 11  # one more pruning pass (every 10 s)
  echo "retention rates 0 seconds=$RETENTION_SECONDS appended=$(( $(metric warden_decision_log_rows_total) - r0 ))" \
    "pruned=$(( $(metric warden_decision_log_pruned_total) - p0 )) budget=$RETENTION_ROWS" >> "$RAW"
  settle
  echo "retention stored 0 rows=$(decision_rows "$WORK/data") bytes=$(decision_bytes "$WORK/data")" >> "$RAW"
  stop_pid
fi

cp "$RAW" /tmp/warden-costs-bench-last-raw.txt
echo
echo "load: wrk $LOAD --latency, uniform over every account (TPA=$TPA tokens each); pass: wrk $PASS --latency, rotate, ends at N answers"
python3 - "$RAW" <<'PY'
import sys
runs, extra = {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    kv = dict(x.split('=') for x in f[3:])
    if f[1] in ('first', 'load', 'cold', 'warm'):
        runs.setdefault((f[0], f[1]), []).append(kv)
    else:
        extra[(f[0], f[1])] = kv
fail = 0
print(f"\n{'tokens':>9} {'phase':<6} {'rep':>3} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>8} {'max ms':>8} "
      f"{'cache hit %':>11} {'misses':>8} {'failed':>6} {'503s':>6} {'log 503':>7} {'load1':>5} {'VmRSS MiB':>9} {'VmHWM MiB':>9}")
sizes = []
for (size, phase) in runs:
    if size not in sizes and size != 'retention': sizes.append(size)
for size in sizes:
    for phase in ('first', 'load', 'cold', 'warm'):
        for i, r in enumerate(runs.get((size, phase), []), 1):
            hits, misses = int(r['hits']), int(r['misses'])
            failed = int(r['non200']) + int(r['wrong_decision']) + int(r['sock_err'])
            fail += failed
            if phase == 'load' and misses: fail += 1
            if phase in ('first', 'cold') and misses < int(size): fail += 1
            ratio = 100.0 * hits / (hits + misses) if hits + misses else 0.0
            print(f"{size:>9} {phase:<6} {i:>3} {int(r['requests']):>9} {float(r['rps']):>8.0f} {int(r['p50_us'])/1000:>7.3f} "
                  f"{int(r['p99_us'])/1000:>8.3f} {int(r['max_us'])/1000:>8.2f} {ratio:>11.2f} {misses:>8} {failed:>6} {r.get('s503', '-'):>6} {r['overloaded']:>7} "
                  f"{r['load']:>5} {int(r['rss_kib'])/1024:>9.1f} {int(r['hwm_kib'])/1024:>9.1f}")
    st = extra.get((size, 'stored'))
    if st and int(st['rows']) > 0:
        print(f"{'':>9} load runs: {st['rows']} decisions stored, {int(st['bytes'])/int(st['rows']):.1f} bytes of decision tables each"
              f"; seed+copy {extra[(size, 'seed')]['seconds']} s; database at the end {int(extra[(size, 'database')]['bytes'])/1e6:.0f} MB")
    c, w = runs.get((size, 'cold')), runs.get((size, 'warm'))
    if c and w:
        print(f"{'':>9} first pass after a restart: {float(c[0]['rps'])/float(w[0]['rps'])*100:.0f}% of the warm pass's req/s, "
              f"p99 {int(c[0]['p99_us'])/max(int(w[0]['p99_us']), 1):.1f}x")
rt = extra.get(('retention', 'rates'))
for r in runs.get(('retention', 'load'), []):
    print(f"\nretention (one principal, budget {rt['budget']} rows): wrk {r['requests']} requests, {float(r['rps']):.0f} req/s, "
          f"p99 {int(r['p99_us'])/1000:.2f} ms, load {r['load']}")
    fail += int(r['non200']) + int(r['wrong_decision']) + int(r['sock_err'])
if rt:
    secs = int(rt['seconds'])
    st = extra[('retention', 'stored')]
    print(f"  appended {int(rt['appended'])/secs:.0f} decisions/s over the {secs} s run; pruned {rt['pruned']} rows in the run "
          f"and the 11 s after it, {int(rt['pruned'])/(secs + 11):.0f} rows/s; stored at the end {st['rows']} rows, {int(st['bytes'])/1e6:.1f} MB of decision tables")
print("\nALL OK: every request 200 with the right decisions, every pass complete, load runs all cache hits" if fail == 0 else f"\nFAILURES: {fail}")
sys.exit(1 if fail else 0)
PY
