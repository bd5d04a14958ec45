#!/usr/bin/env bash
# HTTP benchmark of POST /v1/check against the Cerbos peer (issue 4, DESIGN.md section 7).
#
#   bench/http.sh                      # build ./build, seed, run warden (access log on, off), run Cerbos
#   BUILD_DIR=build-bench REPS=1 bench/http.sh
#
# Env: BUILD_DIR=build (configured Release with Ninja when absent)  SKIP_BUILD=1
#      ACCESS_LOG_MODES="on off"  (warden's WARDEN_ACCESS_LOG; "on" is the default config,
#                                  its lines go to a file on disk)
#      REPS=2  LOAD="-t2 -c16 -d15s"  SINGLE="-t1 -c1 -d10s"  WARMUP="-t2 -c16 -d3s"
#      WARDEN_PORT=18080  WARDEN_THREADS (unset: the server default)
#      CERBOS_BIN (default: ../shared/peers/cerbos/install.sh installs it)  SKIP_CERBOS=1
#      PEERS=/work/shared/peers   KEEP=1 (keep the temp dir)
#
# Per warden mode: a fresh copy of the seeded data dir, start warden, one curl check, a
# warm-up, REPS x (LOAD, SINGLE) with wrk --latency + bench/check.lua, then stop warden
# (SIGTERM, wait) and count the decision rows with the sqlite3 CLI (the row_count of every
# decision_chunk; tests/store/decision_journal_test.cc checks row_count against the blobs):
#   every 200 answer carries 2 evaluated checks = 2 rows. wrk counts the requests it saw
#   complete; when a run's duration ends, up to one request per connection is in flight, and
#   the server may have committed its rows (durable before the answer) and then answered a
#   closed socket. So the check is: 2 x counted_200 <= rows <= 2 x (counted_200 + conns),
#   summed over every wrk run and curl call against that server instance; nothing else
#   writes decision rows. Anything outside that range fails the script.
# Then Cerbos with audit on (start-cerbos.sh <bin> on), the same warm-up and wrk lines with
# the peer's check.lua. Prints raw RESULT lines, one table of medians, the ratios and the
# targets. Exit 1 on any non-200, wrong decision, socket error or decision-log mismatch.
#
# The host's ceiling, run by run (NGINX=auto|1|0; auto = when the nginx binary is installed,
# `apt-get install -y nginx`): ../shared/peers/nginx/nginx.conf (2 workers, a fixed JSON body)
# is started once, and each warden LOAD run is preceded by the same LOAD run against it. On
# this shared VM that fixed-body server's own p99 at 16 connections moves between ~0.25 and
# ~5 ms from one minute to the next, so each warden p99 is printed beside the ceiling's p99
# measured just before it. The nginx runs are checked like the others (status, decisions).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) BUILD=$BUILD_DIR ;; *) BUILD=$ROOT/$BUILD_DIR ;; esac
PEERS=${PEERS:-/work/shared/peers}
ACCESS_LOG_MODES=${ACCESS_LOG_MODES:-"on off"}
REPS=${REPS:-2}
LOAD=${LOAD:-"-t2 -c16 -d15s"}
SINGLE=${SINGLE:-"-t1 -c1 -d10s"}
WARMUP=${WARMUP:-"-t2 -c16 -d3s"}
WARDEN_PORT=${WARDEN_PORT:-18080}
URL=http://127.0.0.1:$WARDEN_PORT
for tool in wrk sqlite3 curl python3 openssl; do
  command -v $tool >/dev/null || { echo "http.sh: $tool is not installed" >&2; exit 1; }
done
NGINX=${NGINX:-auto}
[[ $NGINX == auto ]] && { command -v nginx >/dev/null && NGINX=1 || NGINX=0; }
[[ $NGINX == 1 ]] && ! command -v nginx >/dev/null && { echo "http.sh: NGINX=1 but nginx is not installed" >&2; exit 1; }
NGINX_URL=http://127.0.0.1:8089  # the port of ../shared/peers/nginx/nginx.conf
conns() { sed -n 's/.*-c\([0-9]*\).*/\1/p' <<<"$1"; }

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  [[ -f $BUILD/build.ninja || -f $BUILD/Makefile ]] || cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$BUILD" --target warden warden_seed -j2 >&2
fi
WARDEN=$BUILD/warden
SEED=$BUILD/bench/warden_seed

WORK=$(mktemp -d /tmp/warden-http-bench.XXXXXX)
RAW=$WORK/raw.txt; : > "$RAW"
PID=""
stop_pid() {  # SIGTERM the server we started, wait for it to exit
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID"
    for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PID" 2>/dev/null && { echo "http.sh: pid $PID did not stop" >&2; kill -9 "$PID"; }
    wait "$PID" 2>/dev/null || true
  fi
  PID=""
}
NGINX_PID=""
cleanup() { stop_pid; [[ -n "$NGINX_PID" ]] && kill "$NGINX_PID" 2>/dev/null; [[ "${KEEP:-0}" == 1 ]] && echo "kept $WORK" >&2 || rm -rf "$WORK"; }
trap cleanup EXIT

# ---- seed: 10 accounts x 2 tokens (the load uses the first token; the rest exist so the
# token table is not trivially small).
PEPPER=$(openssl rand -hex 32)
"$SEED" --data "$WORK/seed" --policies "$ROOT/policies" --policy "$ROOT/bench/bench-account.yaml" \
  --pepper "$PEPPER" --accounts 10 --tokens-per-account 2 --tokens-out "$WORK/tokens.txt" >&2
export WARDEN_BENCH_TOKENS=$WORK/tokens.txt
TOKEN=$(head -1 "$WORK/tokens.txt")

echo "# warden $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- server store engine common || echo -dirty) | $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2) | $(nproc) CPUs | load $(cut -d' ' -f1-3 /proc/loadavg) | $(date -u +%FT%TZ)"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }  # utime+stime of all threads, 1/100 s
run_wrk() {  # label mode lua url -> appends "label mode scen rep RESULT... conns= cpu_us_per_req=" lines
  local label=$1 mode=$2 lua=$3 url=$4 args out res t0 t1 n
  wrk $WARMUP -s "$lua" "$url" > "$WORK/warmup.txt"
  echo "$label $mode warmup 0 $(grep '^RESULT' "$WORK/warmup.txt" | cut -d' ' -f2-) conns=$(conns "$WARMUP")" >> "$RAW"
  for rep in $(seq 1 "$REPS"); do
    for scen in load single; do
      if [[ $scen == load ]]; then args=$LOAD; else args=$SINGLE; fi
      if [[ $scen == load && $label == warden && -n "$NGINX_PID" ]]; then  # the ceiling, just before
        res=$(wrk $args --latency -s "$PEERS/cerbos/check.lua" "$NGINX_URL" | grep '^RESULT')
        echo "nginx ceiling load $rep-$mode ${res#RESULT } conns=$(conns "$args") cpu_us_per_req=0" | tee -a "$RAW"
      fi
      t0=$(cpu_ticks)
      out=$(wrk $args --latency -s "$lua" "$url")
      t1=$(cpu_ticks)
      res=$(grep '^RESULT' <<<"$out")
      n=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$res")
      echo "$label $mode $scen $rep ${res#RESULT } conns=$(conns "$args") cpu_us_per_req=$(( (t1 - t0) * 10000 / (n > 0 ? n : 1) ))" | tee -a "$RAW"
    done
  done
}

# ---- the nginx ceiling (idle while it is not measured)
if [[ $NGINX == 1 ]]; then
  mkdir -p "$WORK/nginx/tmp"
  nginx -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$PEERS/nginx/nginx.conf" -g 'daemon off;' &
  NGINX_PID=$!
  for _ in $(seq 1 50); do curl -s -o /dev/null -X POST "$NGINX_URL/api/check/resources" && break; sleep 0.1; done
  wrk $WARMUP -s "$PEERS/cerbos/check.lua" "$NGINX_URL" > /dev/null
  echo "## nginx ceiling pid=$NGINX_PID $(nginx -v 2>&1)"
fi

# ---- warden
for mode in $ACCESS_LOG_MODES; do
  DATA=$WORK/data-$mode
  cp -r "$WORK/seed" "$DATA"
  WARDEN_LISTEN=127.0.0.1:$WARDEN_PORT WARDEN_DATA=$DATA WARDEN_POLICIES=$ROOT/policies \
  WARDEN_TOKEN_PEPPER=$PEPPER WARDEN_ADMIN_PASSWORD=bench-admin-password-$$ \
  WARDEN_ACCESS_LOG=$([[ $mode == on ]] && echo true || echo false) WARDEN_WATCH_POLICIES=false \
    "$WARDEN" serve > "$WORK/warden-$mode.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf "$URL/healthz" >/dev/null || { echo "warden did not start:" >&2; cat "$WORK/warden-$mode.log" >&2; exit 1; }
  echo "## warden access_log=$mode pid=$PID threads=$(ls /proc/$PID/task | wc -l) idle $(grep VmRSS /proc/$PID/status | tr -s ' \t' ' ')"
  body='{"token":"'$TOKEN'","checks":[{"model":"company","action":"view","resource":{"id":"c1"}},{"model":"company","action":"update","resource":{"id":"c1"}}],"context":{"request_id":"bench-1","method":"GET","path":"/companies/c1"}}'
  echo "curl check:"
  code=$(curl -s -o "$WORK/curl.json" -w '%{http_code}' -H 'Content-Type: application/json' --data "$body" "$URL/v1/check")
  echo "  $(cat "$WORK/curl.json") [HTTP $code]"
  [[ $code == 200 ]] && echo "warden curl curl 0 requests=1 ok=1 non200=0 wrong_decision=0 sock_err=0 conns=1" >> "$RAW"
  run_wrk warden "$mode" "$ROOT/bench/check.lua" "$URL"
  echo "warden $mode hwm $(awk '/VmHWM/{print $2}' /proc/$PID/status)" >> "$RAW"
  curl -s "$URL/metrics" | awk '/^warden_decision_log_batches_total/{b=$2} /^warden_decision_log_rows_total/{r=$2}
    END{printf "## warden access_log='"$mode"' decision-log commits: %d transactions, %.1f rows each on average\n", b, (b ? r/b : 0)}'
  stop_pid
  rows=$(sqlite3 "$DATA/warden.db" 'SELECT COALESCE(SUM(row_count), 0) FROM decision_chunk')
  echo "warden $mode rows $rows" >> "$RAW"
  echo "## warden access_log=$mode stopped; decision rows: $rows; access log: $(wc -l < "$WORK/warden-$mode.log") lines"
done

# ---- Cerbos, audit on
if [[ "${SKIP_CERBOS:-0}" != 1 ]]; then
  CERBOS_BIN=${CERBOS_BIN:-$("$PEERS/cerbos/install.sh")}
  export CERBOS_RUN_DIR=$WORK/cerbos
  export CERBOS_AUDIT_FILE=$CERBOS_RUN_DIR/audit.log
  CURL_CERBOS=http://127.0.0.1:${CERBOS_HTTP_PORT:-3592}
  PID=$("$PEERS/cerbos/start-cerbos.sh" "$CERBOS_BIN" on | tail -1)
  echo "## cerbos audit=on pid=$PID $("$CERBOS_BIN" --version 2>/dev/null | head -1)"
  echo "curl check:"
  curl -s -w '  [HTTP %{http_code}]\n' -H 'Content-Type: application/json' \
    --data @"$PEERS/cerbos/check-viewer.json" "$CURL_CERBOS/api/check/resources"
  run_wrk cerbos on "$PEERS/cerbos/check.lua" "$CURL_CERBOS"
  echo "cerbos on hwm $(awk '/VmHWM/{print $2}' /proc/$PID/status)" >> "$RAW"
  stop_pid
  echo "## cerbos audit file: $(grep -c '"log.kind":"decision"' "$CERBOS_AUDIT_FILE") decision entries"
fi

cp "$RAW" /tmp/warden-http-bench-last-raw.txt
echo
echo "wrk load:   wrk $LOAD --latency -s check.lua URL"
echo "wrk single: wrk $SINGLE --latency -s check.lua URL"
LOAD="$LOAD" SINGLE="$SINGLE" python3 - "$RAW" <<'PY'
import os, sys, statistics as st
runs, hwm, rows = {}, {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[2] == 'hwm': hwm[(f[0], f[1])] = int(f[3]); continue
    if f[2] == 'rows': rows[(f[0], f[1])] = int(f[3]); continue
    kv = dict(x.split('=') for x in f[4:])
    kv['rep'] = f[3]
    runs.setdefault((f[0], f[1], f[2]), []).append(kv)

fail = 0
def tot(rs, k): return sum(int(r.get(k, 0)) for r in rs)
servers = sorted({(s, m) for (s, m, _) in runs}, key=lambda x: ({'warden': 0, 'cerbos': 1}.get(x[0], 2), x[1]))
name = lambda s, m: {'warden': f"warden, access log {m}", 'cerbos': f"cerbos 0.55, audit {m}"}.get(s, "nginx fixed body (ceiling)")
med = {}
print(f"\n{'server':<27} {'wrk':<12} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'requests':>9} {'non200':>6} {'wrong':>5} {'sockerr':>7} {'CPU us/req':>10} {'VmHWM MiB':>9}")
for s, m in servers:
    for scen in ('load', 'single'):
        rs = runs.get((s, m, scen), [])
        if not rs: continue
        g = lambda k: st.median(float(r[k]) for r in rs)
        med[(s, m, scen)] = {k: g(k) for k in ('rps', 'p50_us', 'p90_us', 'p99_us', 'max_us')}
        cpu = '-' if s == 'nginx' else f"{st.median(int(r['cpu_us_per_req']) for r in rs):.0f}"
        label = os.environ['LOAD' if scen == 'load' else 'SINGLE'].replace('-', '').replace(' ', ' ')
        print(f"{name(s, m):<27} {label:<12} {g('rps'):>9.0f} {g('p50_us')/1000:>8.3f} {g('p90_us')/1000:>8.3f} {g('p99_us')/1000:>8.3f} {g('max_us')/1000:>8.2f} "
              f"{tot(rs,'requests'):>9} {tot(rs,'non200'):>6} {tot(rs,'wrong_decision'):>5} {tot(rs,'sock_err'):>7} {cpu:>10} {('-' if s == 'nginx' else f'{hwm.get((s, m), 0)/1024:.1f}'):>9}")
    allr = [r for (s2, m2, _), rs in runs.items() if (s2, m2) == (s, m) for r in rs]
    fail += tot(allr, 'non200') + tot(allr, 'wrong_decision') + tot(allr, 'sock_err')
print("(medians over runs; requests/non200/wrong/sockerr are totals; warm-up and curl runs are not in the table but are checked;")
print(" CPU us/req = the server process's user+sys CPU time during the run / requests, a figure less disturbed by other load)")

pairs = [(m, r, n) for (s, m, scen), rs in runs.items() if s == 'warden' and scen == 'load'
         for r in rs for n in runs.get(('nginx', 'ceiling', 'load'), []) if n['rep'] == f"{r['rep']}-{m}"]
if pairs:
    print("\np99 at 16 connections, run by run, beside the nginx ceiling's run just before it (same wrk line)")
    for m, r, n in pairs:
        print(f"  access log {m}, run {r['rep']}: warden {int(r['p99_us'])/1000:.2f} ms at {float(r['rps']):.0f} req/s; "
              f"nginx {int(n['p99_us'])/1000:.2f} ms at {float(n['rps']):.0f} req/s")

print("\nDecision log (warden): rows vs answered checks, 2 checks per 200 answer")
for (s, m), n in rows.items():
    allr = [r for (s2, m2, _), rs in runs.items() if (s2, m2) == (s, m) for r in rs]
    answered = sum(int(r['ok']) + int(r['wrong_decision']) for r in allr)  # 200 answers wrk counted
    lo, hi = 2 * answered, 2 * (answered + sum(int(r['conns']) for r in allr))
    good = lo <= n <= hi
    fail += 0 if good else 1
    print(f"  access log {m}: rows={n}  counted 200s={answered}  expected {lo}..{hi} "
          f"(in flight at wrk's end: {(n - lo) // 2} requests)  {'OK' if good else 'MISMATCH'}")

c = [k for k in med if k[0] == 'cerbos' and k[2] == 'load']
if c:
    cl, cs = med[c[0]], med.get(('cerbos', c[0][1], 'single'))
    print("\nRatios and targets (warden vs Cerbos audit on, same run)")
    for s, m in servers:
        if s != 'warden' or (s, m, 'load') not in med: continue
        wl, ws = med[(s, m, 'load')], med.get((s, m, 'single'))
        ratio = wl['rps'] / cl['rps']
        print(f"  {name(s, m)}: req/s {wl['rps']:.0f} / {cl['rps']:.0f} = {ratio:.1f}x (target >= 10x: {'MET' if ratio >= 10 else 'MISSED'}); "
              f"p99 at 16 conns {wl['p99_us']/1000:.3f} ms vs {cl['p99_us']/1000:.3f} ms (target < 2 ms: {'MET' if wl['p99_us'] < 2000 else 'MISSED'}); "
              + (f"single-client p50 {ws['p50_us']/1000:.3f} ms vs {cs['p50_us']/1000:.3f} ms (target < 0.15 ms: {'MET' if ws['p50_us'] < 150 else 'MISSED'})" if ws and cs else ""))
print("\nALL OK: every request 200 with the right decisions, decision log complete" if fail == 0 else f"\nFAILURES: {fail}")
sys.exit(1 if fail else 0)
PY
