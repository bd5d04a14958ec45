#!/usr/bin/env bash
# Resident memory of warden with 10,000 service accounts and 100,000 tokens, every token
# verified once (so every token and account is in the verifier's cache). DESIGN.md section 7
# target: under 64 MiB.
#
#   bench/memory.sh
#   BUILD_DIR=build-bench ACCOUNTS=10000 TOKENS_PER_ACCOUNT=10 bench/memory.sh
#
# Env: BUILD_DIR=build  SKIP_BUILD=1  ACCOUNTS=10000  TOKENS_PER_ACCOUNT=10  WARDEN_PORT=18081
#      WARM="-t1 -c8 -d10s" (one wrk thread: one Lua counter walks the token file in order)
#      SEED_DIR (default: a directory under /dev/shm, see below)  KEEP=1
#
# Seeding writes through the store API, one fsynced transaction per account and per token
# (the admin connection is synchronous=FULL, and the store has no bulk insert). To keep that
# to seconds, the database is seeded on tmpfs (/dev/shm) and then copied to a data directory
# on disk, where warden runs. Then: start warden (default config: access log on, to a file),
# read VmRSS idle, verify every token once with wrk (bench/check.lua, WARDEN_BENCH_ROTATE=1,
# repeated from where the last run stopped until all tokens were sent), confirm from
# /metrics that the cache misses cover every token, then read VmRSS and VmHWM, run a short
# load on the warmed cache, and read them again.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) BUILD=$BUILD_DIR ;; *) BUILD=$ROOT/$BUILD_DIR ;; esac
ACCOUNTS=${ACCOUNTS:-10000}
TOKENS_PER_ACCOUNT=${TOKENS_PER_ACCOUNT:-10}
WARDEN_PORT=${WARDEN_PORT:-18081}
WARM=${WARM:-"-t1 -c8 -d10s"}
URL=http://127.0.0.1:$WARDEN_PORT
for tool in wrk curl openssl; do
  command -v $tool >/dev/null || { echo "memory.sh: $tool is not installed" >&2; exit 1; }
done
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  [[ -f $BUILD/build.ninja || -f $BUILD/Makefile ]] || cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$BUILD" --target warden warden_seed -j2 >&2
fi

WORK=$(mktemp -d /tmp/warden-memory-bench.XXXXXX)
SEED_DIR=${SEED_DIR:-$(mktemp -d /dev/shm/warden-seed.XXXXXX)}
PID=""
cleanup() {
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID"; for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$SEED_DIR"
  [[ "${KEEP:-0}" == 1 ]] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT
mem() { awk '/^(VmRSS|VmHWM|RssAnon|RssFile)/{printf "%s %.1f MiB  ", $1, $2/1024}' /proc/$PID/status; echo; }

PEPPER=$(openssl rand -hex 32)
start=$(date +%s.%N)
"$BUILD/bench/warden_seed" --data "$SEED_DIR" --policies "$ROOT/policies" --policy "$ROOT/bench/bench-account.yaml" \
  --pepper "$PEPPER" --accounts "$ACCOUNTS" --tokens-per-account "$TOKENS_PER_ACCOUNT" \
  --tokens-out "$WORK/tokens.txt" 2>&1 | tail -1
mkdir -p "$WORK/data" && chmod 700 "$WORK/data"
cp "$SEED_DIR"/warden.db* "$WORK/data/"
NTOK=$(wc -l < "$WORK/tokens.txt")
echo "# seeded $ACCOUNTS accounts, $NTOK tokens in $(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)") s; database $(du -h "$WORK/data/warden.db" | cut -f1)"

WARDEN_LISTEN=127.0.0.1:$WARDEN_PORT WARDEN_DATA=$WORK/data WARDEN_POLICIES=$ROOT/policies \
WARDEN_TOKEN_PEPPER=$PEPPER WARDEN_ADMIN_PASSWORD=bench-admin-password-$$ WARDEN_WATCH_POLICIES=false \
  "$BUILD/warden" serve > "$WORK/warden.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || { echo "warden did not start" >&2; cat "$WORK/warden.log" >&2; exit 1; }
echo "idle:                  $(mem)"

export WARDEN_BENCH_TOKENS=$WORK/tokens.txt
source "$ROOT/bench/lib.sh"  # warm_tokens
warm_tokens "$URL" "$WARM"
sent=$WARM_SENT fail=$WARM_FAILED
misses=$(curl -s "$URL/metrics" | awk '/^warden_token_cache_misses_total/{print $2}')
echo "sent $sent checks; token cache misses $misses (tokens: $NTOK)"
echo "all tokens verified:   $(mem)"
wrk -t2 -c16 -d5s -s "$ROOT/bench/check.lua" "$URL" | grep '^RESULT' | sed 's/^/  load: /'
echo "after 5 s of load:     $(mem)"
rss=$(awk '/^VmRSS/{print $2}' /proc/$PID/status); hwm=$(awk '/^VmHWM/{print $2}' /proc/$PID/status)
echo "RESULT accounts=$ACCOUNTS tokens=$NTOK cached_misses=$misses vmrss_kib=$rss vmhwm_kib=$hwm threads=$(ls /proc/$PID/task | wc -l) failed=$fail"
if (( hwm < 64 * 1024 )); then echo "target VmHWM < 64 MiB: MET ($((hwm / 1024)) MiB)"; else echo "target VmHWM < 64 MiB: MISSED ($((hwm / 1024)) MiB)"; fi
(( fail == 0 )) && (( misses >= NTOK ))
