#!/usr/bin/env bash
# Hostile clients against a real `warden serve` (issue 12; DESIGN.md section 7: "under each
# attack of the hostile-client tests, another client's p99 stays within 2x, RSS < 128 MiB").
#
#   bench/attacks.sh                             # build ./build, every attack, 2 rounds
#   ATTACKS="slowloris idle" ROUNDS=3 SKIP_BUILD=1 bench/attacks.sh
#
# Per attack one fresh server (a copy of one seeded data directory: ACCOUNTS accounts, one token
# each, and BAD_TOKENS well-formed tokens nobody holds, by warden_seed), default limits (retention
# by rows off: the victim's account passes a million rows, which per-principal retention would
# prune mid-count, as in bench/http.sh; WARDEN_INVALID_TOKENS_PER_MINUTE stays 600). Then
# ROUNDS x (victim alone, victim under attack), alternating. The victim is
#   wrk $VICTIM --latency -s bench/check.lua      (one valid token, two checks: the default shape)
# The attacker (bench/attacks/attack.py ATTACK) connects from ATTACKER_ADDR (127.0.0.2: another
# loopback address than the victim's 127.0.0.1, as another host would be; per-address bounds
# such as max_connections_per_address tell them apart), starts ATTACK_WARMUP s before the
# victim and stops when the victim ends. During every victim run: the server's VmRSS sampled every 200 ms
# (and VmHWM), its CPU time (all threads, and the event-loop thread `warden` alone). Around
# every attack run: /metrics counters (warden_http_limit_total{limit=...},
# warden_invalid_token_throttled_total, warden_admin_throttled_total, warden_token_unknown_cache_hits_total,
# warden_limit_exceeded_total when present) and the decision rows (SUM(row_count) of
# decision_chunk once the journal is drained): rows not from the victim are the attack's.
#
# Attacks (ATTACKS, default all; see bench/attacks/attack.py):
#   big-attrs    ~900 KB unauthenticated check, 90,000 resource attributes, in a loop (BIG_ATTRS_CONNS=1)
#   pipeline     pipelined GET /metrics, answers never read (PIPELINE_CONNS=16)
#   pipeline-96  the same on 96 connections: past total_buffer_bytes (64 MiB) at 1 MiB each
#   long-path    GET /v1/service-accounts/ + 8,000 / 100,000 x 'a', admin session (LONG_PATH_CONNS=2)
#   yaml-alias   nested-alias permissions YAML (9 levels of 9), YAML_PARALLEL=16 at a time by an
#                admin; answers in flight when the victim ends are awaited (YAML_DRAIN=240 s)
#   slowloris    SLOWLORIS_CONNS=1000 connections, one header byte every 100-500 ms each
#   bad-tokens   random well-formed bad tokens, one check a request (BAD_TOKENS_CONNS=4)
#   bad-batches  the same, 100 checks a request
#   idle         IDLE_CONNS=10500 idle keep-alive connections (max_connections is 10,000), held
#   idle-churn   the same, and each connection the server closes is opened again at once
#
# Env: BUILD_DIR=build (configured Release + WARDEN_BENCH with Ninja when absent)  SKIP_BUILD=1
#      ROUNDS=2  VICTIM="-t1 -c4 -d15s"  ATTACK_WARMUP=3  PORT (default: a free one)  KEEP=1
#      ATTACKER_ADDR=127.0.0.2
#      ACCOUNTS=10 BAD_TOKENS=10000  ACCESS_LOG=on  SAFETY_RSS_MIB=2048 (the server is killed
#      above this, to protect the shared machine; counted as a crash)
# Exit 1 when a victim request failed (non-200, wrong decision, socket error) or the server died.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) BUILD=$BUILD_DIR ;; *) BUILD=$ROOT/$BUILD_DIR ;; esac
ATTACKS=${ATTACKS:-"big-attrs pipeline pipeline-96 long-path yaml-alias slowloris bad-tokens bad-batches idle idle-churn"}
ROUNDS=${ROUNDS:-2}
VICTIM=${VICTIM:-"-t1 -c4 -d15s"}
ATTACK_WARMUP=${ATTACK_WARMUP:-3}
ACCOUNTS=${ACCOUNTS:-10}
BAD_TOKENS=${BAD_TOKENS:-10000}
ACCESS_LOG=${ACCESS_LOG:-on}
SAFETY_RSS_MIB=${SAFETY_RSS_MIB:-2048}
BIG_ATTRS_CONNS=${BIG_ATTRS_CONNS:-1}
PIPELINE_CONNS=${PIPELINE_CONNS:-16}
LONG_PATH_CONNS=${LONG_PATH_CONNS:-2}
YAML_PARALLEL=${YAML_PARALLEL:-16}
YAML_DRAIN=${YAML_DRAIN:-240}
SLOWLORIS_CONNS=${SLOWLORIS_CONNS:-1000}
BAD_TOKENS_CONNS=${BAD_TOKENS_CONNS:-4}
IDLE_CONNS=${IDLE_CONNS:-10500}
ATTACKER_ADDR=${ATTACKER_ADDR:-127.0.0.2}
ATTACKER=$ROOT/bench/attacks/attack.py
for tool in wrk sqlite3 curl python3 openssl; do
  command -v $tool >/dev/null || { echo "attacks.sh: $tool is not installed" >&2; exit 1; }
done
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
URL=http://127.0.0.1:$PORT

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  [[ -f $BUILD/build.ninja || -f $BUILD/Makefile ]] || cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWARDEN_BENCH=ON >&2
  cmake --build "$BUILD" --target warden warden_seed -j2 >&2
fi
WARDEN=$BUILD/warden
SEED=$BUILD/bench/warden_seed

WORK=$(mktemp -d /tmp/warden-attacks.XXXXXX)
RAW=$WORK/raw.txt; : > "$RAW"
PID="" APID="" SPID=""
stop_pid() {  # SIGTERM the server we started, wait for it to exit
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID"
    for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PID" 2>/dev/null && { echo "attacks.sh: pid $PID did not stop" >&2; kill -9 "$PID"; }
  fi
  [[ -n "$PID" ]] && { wait "$PID" 2>/dev/null || true; }
  PID=""
}
cleanup() {
  for p in $APID $SPID; do kill "$p" 2>/dev/null || true; done
  stop_pid
  [[ "${KEEP:-0}" == 1 ]] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

PEPPER=$(openssl rand -hex 32)
PASSWORD=attack-admin-password-$$
"$SEED" --data "$WORK/seed" --policies "$ROOT/policies" --policy "$ROOT/bench/bench-account.yaml" \
  --pepper "$PEPPER" --accounts "$ACCOUNTS" --tokens-per-account 1 --tokens-out "$WORK/tokens.txt" \
  --bad-tokens-out "$WORK/bad-tokens.txt" --bad-tokens "$BAD_TOKENS" >&2
export WARDEN_BENCH_TOKENS=$WORK/tokens.txt WARDEN_BENCH_TPA=1 WARDEN_BENCH_SHAPE=one WARDEN_BENCH_BATCH=2
CHECKS=2

echo "# warden $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- server store engine common || echo -dirty) | $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2) | $(nproc) CPUs | load $(cut -d' ' -f1-3 /proc/loadavg) | port $PORT | $(date -u +%FT%TZ)"

start_server() {  # attack -> a fresh server on a copy of the seeded directory
  DATA=$WORK/data-$1
  rm -rf "$DATA"; cp -r "$WORK/seed" "$DATA"
  WARDEN_LISTEN=127.0.0.1:$PORT WARDEN_DATA=$DATA WARDEN_POLICIES=$ROOT/policies \
  WARDEN_TOKEN_PEPPER=$PEPPER WARDEN_ADMIN_PASSWORD=$PASSWORD WARDEN_WATCH_POLICIES=false WARDEN_RETENTION_ROWS=0 \
  WARDEN_ACCESS_LOG=$([[ $ACCESS_LOG == on ]] && echo true || echo false) \
    "$WARDEN" serve > "$WORK/warden-$1.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf "$URL/healthz" >/dev/null || { echo "warden did not start:" >&2; cat "$WORK/warden-$1.log" >&2; exit 1; }
}
alive() { [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat" 2>/dev/null || echo 0; }       # all threads, 1/100 s
loop_ticks() { awk '{print $14 + $15}' "/proc/$PID/task/$PID/stat" 2>/dev/null || echo 0; }  # the event loop
metrics() {  # the counters of interest as key=value (limit_<name>=, throttled=, unknown_hits=, limit_exceeded=)
  curl -s -m 300 "$URL/metrics" | awk '
    /^warden_http_limit_total\{/ { match($1, /limit="[^"]*"/); n = substr($1, RSTART + 7, RLENGTH - 8); printf "lim_%s=%s ", n, $2 }
    /^warden_invalid_token_throttled_total / { printf "throttled=%s ", $2 }
    /^warden_admin_throttled_total / { printf "admin_throttled=%s ", $2 }
    /^warden_token_unknown_cache_hits_total / { printf "unknown_hits=%s ", $2 }
    /^warden_limit_exceeded_total/ { printf "limit_exceeded=%s ", $2 }
    /^warden_decision_log_rows_total / { printf "log_rows=%s ", $2 }'
}
settle() {  # until the mover has moved every journaled row (backlog gauge 0), at most 5 min
  for _ in $(seq 1 3000); do
    [[ $(curl -s -m 300 "$URL/metrics" | awk '/^warden_decision_journal_backlog_bytes/{print $2}') == 0 ]] && return
    alive || return
    sleep 0.1
  done
  echo "attacks.sh: the decision journal did not drain in 5 minutes" >&2
}
decision_rows() { sqlite3 "$DATA/warden.db" 'SELECT COALESCE(SUM(row_count), 0) FROM decision_chunk' 2>/dev/null || echo -1; }
quiesce() {  # until the server uses < 0.2 CPU s per s (in-flight work of the last attack done), at most 10 min
  local t0 t1 waited=0
  while alive && (( waited < 600 )); do
    t0=$(cpu_ticks); sleep 1; t1=$(cpu_ticks); waited=$((waited + 1))
    (( t1 - t0 < 20 )) && break
  done
  echo $waited
}
attack_args() {  # attack -> the attack.py command line
  local common="--port $PORT --source $ATTACKER_ADDR --bad-tokens $WORK/bad-tokens.txt --password $PASSWORD"
  case $1 in
    big-attrs) echo "big-attrs $common --conns $BIG_ATTRS_CONNS" ;;
    pipeline) echo "pipeline $common --conns $PIPELINE_CONNS" ;;
    pipeline-96) echo "pipeline $common --conns 96" ;;
    long-path) echo "long-path $common --conns $LONG_PATH_CONNS" ;;
    yaml-alias) echo "yaml-alias $common --parallel $YAML_PARALLEL --drain $YAML_DRAIN" ;;
    slowloris) echo "slowloris $common --conns $SLOWLORIS_CONNS" ;;
    bad-tokens) echo "bad-tokens $common --conns $BAD_TOKENS_CONNS" ;;
    bad-batches) echo "bad-batches $common --conns $BAD_TOKENS_CONNS" ;;
    idle) echo "idle $common --conns $IDLE_CONNS" ;;
    idle-churn) echo "idle $common --conns $IDLE_CONNS --reconnect" ;;
    *) echo "attacks.sh: unknown attack $1" >&2; exit 2 ;;
  esac
}

victim() {  # label -> one victim run with RSS sampling; appends its line to RAW
  local label=$1 c0 c1 l0 l1 out res samp
  python3 "$ATTACKER" sample --pid "$PID" --kill-above-kib $((SAFETY_RSS_MIB * 1024)) > "$WORK/sample.txt" &
  SPID=$!
  c0=$(cpu_ticks) l0=$(loop_ticks)
  out=$(wrk $VICTIM --latency -s "$ROOT/bench/check.lua" "$URL" 2>&1 || true)
  c1=$(cpu_ticks) l1=$(loop_ticks)
  kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=""
  res=$(grep '^RESULT' <<<"$out" || echo "RESULT requests=0 rps=0 p50_us=0 p90_us=0 p99_us=0 max_us=0 ok=0 non200=0 wrong_decision=0 sock_err=1 good=0 badtok=0")
  samp=$(grep '^SAMPLE' "$WORK/sample.txt" || echo "SAMPLE rss_max_kib=0 hwm_kib=0")
  echo "$label ${res#RESULT } ${samp#SAMPLE } srv_cpu_s=$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", (b-a)/100}') loop_cpu_s=$(awk -v a="$l0" -v b="$l1" 'BEGIN{printf "%.2f", (b-a)/100}')"
}

for attack in $ATTACKS; do
  start_server "$attack"
  echo "## $attack: warden pid=$PID idle $(grep VmRSS /proc/$PID/status | tr -s ' \t' ' ')"
  wrk -t1 -c4 -d2s -s "$ROOT/bench/check.lua" "$URL" > /dev/null  # warm-up
  for round in $(seq 1 "$ROUNDS"); do
    waited=$(quiesce)
    line=$(victim "$attack $round alone")
    echo "$line quiesce_s=$waited" | tee -a "$RAW"
    alive || { echo "$attack $round crash phase=alone" | tee -a "$RAW"; break; }

    settle; rows0=$(decision_rows); m0=$(metrics)
    # shellcheck disable=SC2046
    python3 "$ATTACKER" $(attack_args "$attack") > "$WORK/attack.out" 2> "$WORK/attack.err" &
    APID=$!
    for _ in $(seq 1 600); do grep -q "^ready" "$WORK/attack.err" 2>/dev/null && break; kill -0 $APID 2>/dev/null || break; sleep 0.1; done
    sleep "$ATTACK_WARMUP"
    line=$(victim "$attack $round attack")
    kill "$APID" 2>/dev/null || true
    t_stop=$(date +%s.%N)
    wait "$APID" 2>/dev/null || true; APID=""
    t_done=$(date +%s.%N)
    alive || { echo "$line" >> "$RAW"; echo "$attack $round crash phase=attack" | tee -a "$RAW"; tail -20 "$WORK/warden-$attack.log" >&2; break; }
    hwm_end=$(awk '/VmHWM/{print $2}' "/proc/$PID/status" 2>/dev/null || echo 0)  # the peak includes the attack's last moments
    settle; rows1=$(decision_rows); m1=$(metrics)
    a=$(grep '^ATTACK' "$WORK/attack.out" | cut -d' ' -f3- || true)
    ans=$(grep '^ANSWER' "$WORK/attack.out" | cut -d' ' -f3- | tr -d '\n' | tr ' ' '_' | cut -c1-160 || true)
    grep -v '^started\|^ready' "$WORK/attack.err" | tail -5 >&2 || true
    echo "$line hwm_end_kib=$hwm_end rows=$((rows1 - rows0)) stop_wait_s=$(awk -v a="$t_stop" -v b="$t_done" 'BEGIN{printf "%.1f", b-a}') $(sed 's/\([a-z_0-9]*\)=/a_\1=/g' <<<"$a") $(sed 's/\([a-z_0-9]*\)=/m0_\1=/g' <<<"$m0") $(sed 's/\([a-z_0-9]*\)=/m1_\1=/g' <<<"$m1")" | tee -a "$RAW"
    [[ -n "$ans" ]] && echo "$attack $round answer $ans" | tee -a "$RAW"
  done
  alive || echo "$attack 0 crash phase=end" >> "$RAW"
  echo "## $attack: access log $(wc -l < "$WORK/warden-$attack.log") lines; VmHWM $(awk '/VmHWM/{print $2}' /proc/$PID/status 2>/dev/null) kB"
  stop_pid
done

cp "$RAW" /tmp/warden-attacks-last-raw.txt
echo
echo "victim: wrk $VICTIM --latency -s bench/check.lua $URL (one token, $CHECKS checks a request); load now $(cut -d' ' -f1-3 /proc/loadavg)"
CHECKS=$CHECKS python3 "$ROOT/bench/attacks/summary.py" "$RAW"
