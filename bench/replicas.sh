#!/usr/bin/env bash
# POST /v1/check on the PostgreSQL store against SQLite, and two replicas behind nginx against
# one, in one run (issue 17; table in docs/benchmarks.md):
#   sqlite     one replica on SQLite (its data directory)
#   pg         one replica on PostgreSQL
#   pg-nginx1  one replica on PostgreSQL behind nginx (what the gateway itself costs)
#   pg-nginx2  two replicas on PostgreSQL behind nginx, round robin
# Each: one account (role viewer) and one token, bench/check.lua's default shape (view allowed,
# update denied, 2 checks a request), WARMUP then REPS x LOAD with wrk --latency.
# PostgreSQL is a throw-away server of scripts/test_pg.sh with fsync ON (WARDEN_TEST_PG_FSYNC=on):
# a check is answered after its decision row is committed, so commit latency is what is measured.
#
#   bench/replicas.sh            # builds ./build (Release when absent) first
#   REPS=1 LOAD="-t2 -c16 -d10s" SKIP_BUILD=1 bench/replicas.sh
# Env: BUILD_DIR=build  SKIP_BUILD=1  REPS=2  LOAD="-t2 -c32 -d15s"  WARMUP="-t2 -c16 -d3s"
#      BASE_PORT=18180  KEEP=1 (keep the temp dir)
# Exit 1 on any non-200, wrong decision or socket error.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) BUILD=$BUILD_DIR ;; *) BUILD=$ROOT/$BUILD_DIR ;; esac
REPS=${REPS:-2}
LOAD=${LOAD:-"-t2 -c32 -d15s"}
WARMUP=${WARMUP:-"-t2 -c16 -d3s"}
BASE_PORT=${BASE_PORT:-18180}
for tool in wrk curl python3 openssl nginx; do
  command -v $tool >/dev/null || { echo "replicas.sh: $tool is not installed" >&2; exit 1; }
done
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  [[ -f $BUILD/build.ninja ]] || cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$BUILD" --target warden -j2 >&2
fi
WARDEN=$BUILD/warden
WORK=$(mktemp -d /tmp/warden-replicas-bench.XXXXXX)
PIDS=()
NGINX_PID=""
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
  if [[ -n "$NGINX_PID" ]]; then kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=""; fi
}
cleanup() {
  stop_all
  bash "$ROOT/scripts/test_pg.sh" stop "$WORK/pg.url" || true
  [[ "${KEEP:-0}" == 1 ]] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

WARDEN_TEST_PG_FSYNC=on bash "$ROOT/scripts/test_pg.sh" start "$WORK/pg.url" >&2
PG_URL=$(cat "$WORK/pg.url")
[[ -n "$PG_URL" ]] || { echo "replicas.sh: no PostgreSQL server binaries" >&2; exit 1; }
export WARDEN_TOKEN_PEPPER=$(openssl rand -hex 32) WARDEN_ADMIN_PASSWORD=bench-admin-password-1
export WARDEN_RETENTION_ROWS=0 WARDEN_ACCESS_LOG=false

start_replica() {  # name port [store] -> appends to PIDS, waits for /healthz
  local name=$1 port=$2 store=${3:-}
  mkdir -p "$WORK/$name"
  WARDEN_STORE=$store "$WARDEN" serve --listen 127.0.0.1:$port --data "$WORK/$name" --policies "$ROOT/policies" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "replicas.sh: $name did not start:" >&2; cat "$WORK/$name.err" >&2; exit 1
}
make_token() {  # port -> writes $WORK/tokens.txt (one account copied from role viewer, one token)
  local url=http://127.0.0.1:$1 session name
  session=$(curl -sf "$url/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"admin@localhost\",\"password\":\"$WARDEN_ADMIN_PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  name=bench-$RANDOM$RANDOM
  curl -sf "$url/v1/service-accounts" -H "Authorization: Bearer $session" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$name\",\"copy_permissions_from\":{\"kind\":\"role\",\"name\":\"viewer\"}}" >/dev/null
  curl -sf "$url/v1/service-accounts/$name/tokens" -H "Authorization: Bearer $session" -H 'Content-Type: application/json' \
    -d '{"name":"t"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' >"$WORK/tokens.txt"
}
start_nginx() {  # port upstream-ports...
  local port=$1; shift
  local d=$WORK/nginx-$port up=""
  mkdir -p "$d"
  for p in "$@"; do up+="    server 127.0.0.1:$p;"$'\n'; done
  cat >"$d/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $d/body; proxy_temp_path $d/proxy; fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
  upstream warden {
$up    keepalive 64;
  }
  server {
    listen 127.0.0.1:$port;
    location / { proxy_pass http://warden; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_next_upstream off; }
  }
}
EOF
  nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf" &
  NGINX_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "replicas.sh: nginx did not start" >&2; cat "$d/error.log" >&2; exit 1
}
RAW=$WORK/raw.txt
: >"$RAW"
measure() {  # label url
  local label=$1 url=$2 out res
  export WARDEN_BENCH_TOKENS=$WORK/tokens.txt
  wrk $WARMUP -s "$ROOT/bench/check.lua" "$url" >/dev/null
  for rep in $(seq 1 "$REPS"); do
    out=$(wrk $LOAD --latency -s "$ROOT/bench/check.lua" "$url")
    res=$(grep '^RESULT' <<<"$out")
    echo "$label $rep ${res#RESULT }" | tee -a "$RAW" >&2
  done
}

echo "# warden $(git -C "$ROOT" rev-parse --short HEAD) | $(nproc) CPUs | load $(cut -d' ' -f1-3 /proc/loadavg) | LOAD=$LOAD REPS=$REPS | $(date -u +%FT%TZ)"
P=$BASE_PORT
start_replica sqlite $P; make_token $P; measure sqlite http://127.0.0.1:$P; stop_all
start_replica pg1 $((P + 1)) "$PG_URL"; make_token $((P + 1)); measure pg http://127.0.0.1:$((P + 1))
start_nginx $((P + 9)) $((P + 1)); measure pg-nginx1 http://127.0.0.1:$((P + 9)); stop_all
start_replica pg1 $((P + 1)) "$PG_URL"; start_replica pg2 $((P + 2)) "$PG_URL"; make_token $((P + 1))
start_nginx $((P + 9)) $((P + 1)) $((P + 2)); measure pg-nginx2 http://127.0.0.1:$((P + 9)); stop_all

python3 - "$RAW" <<'EOF'
import sys, collections
rows = collections.defaultdict(list)
bad = 0
for line in open(sys.argv[1]):
    f = line.split()
    kv = dict(x.split("=") for x in f[2:])
    rows[f[0]].append(kv)
    bad += int(kv["non200"]) + int(kv["wrong_decision"]) + int(kv["sock_err"])
print("| setup | checks/s (req/s x 2) | req/s | p50 ms | p99 ms | runs |")
print("|---|---:|---:|---:|---:|---:|")
for label in ["sqlite", "pg", "pg-nginx1", "pg-nginx2"]:
    rs = rows.get(label, [])
    if not rs: continue
    rps = sorted(float(r["rps"]) for r in rs)[len(rs) // 2]
    p50 = sorted(int(r["p50_us"]) for r in rs)[len(rs) // 2] / 1000
    p99 = sorted(int(r["p99_us"]) for r in rs)[len(rs) // 2] / 1000
    print(f"| {label} | {rps * 2:,.0f} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {len(rs)} |")
if bad:
    print(f"FAILED: {bad} bad answers"); sys.exit(1)
EOF
