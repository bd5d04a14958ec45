#!/usr/bin/env bash
# What forward-auth costs per request (issue 14): nginx in front of an upstream, with and
# without asking warden, in one run. Both gateways run examples/nginx/nginx.conf (the one the
# gateway test runs); the plain one has its `auth_request` line removed, nothing else. The
# upstream is a second nginx returning a fixed body. Alternates REPS times:
#   plain:  wrk LOAD  -> nginx -> upstream
#   warden: wrk LOAD  -> nginx -(auth_request)-> warden /v1/forward-auth, then -> upstream
# and the same with SINGLE (one connection), GET /companies/c1 with a viewer account's token.
# Prints req/s, p50 and p99 of each and the ratios; checks that every answer was a 200 and
# that warden logged one decision per request (warden_decisions_total).
#
#   bench/forward_auth.sh        # Env: BUILD_DIR=build SKIP_BUILD=1 REPS=3 LOAD="-t2 -c16 -d15s"
#                                #      SINGLE="-t1 -c1 -d10s" KEEP=1 (keep the temp dir)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) BUILD=$BUILD_DIR ;; *) BUILD=$ROOT/$BUILD_DIR ;; esac
REPS=${REPS:-3}
LOAD=${LOAD:-"-t2 -c16 -d15s"}
SINGLE=${SINGLE:-"-t1 -c1 -d10s"}
for tool in wrk nginx curl python3; do
  command -v $tool >/dev/null || { echo "forward_auth.sh: $tool is not installed" >&2; exit 1; }
done
if [[ -z ${SKIP_BUILD:-} ]]; then
  [[ -f $BUILD/build.ninja ]] || cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j 2 --target warden >/dev/null
fi

RUN=$(mktemp -d /tmp/warden-fa-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n ${KEEP:-} ]] && echo "kept $RUN" || rm -rf "$RUN"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WARDEN_PORT=$(free_port); UPSTREAM_PORT=$(free_port); PLAIN_PORT=$(free_port); AUTH_PORT=$(free_port)

# The upstream: a fixed body.
mkdir -p "$RUN/upstream/tmp"
cat > "$RUN/upstream/nginx.conf" <<EOF
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000;
  client_body_temp_path tmp/b; proxy_temp_path tmp/p; fastcgi_temp_path tmp/f; uwsgi_temp_path tmp/u; scgi_temp_path tmp/s;
  server {
    listen 127.0.0.1:$UPSTREAM_PORT;
    location / { default_type application/json; return 200 '{"id":"c1","name":"Acme"}'; }
  }
}
EOF
nginx -p "$RUN/upstream" -c "$RUN/upstream/nginx.conf" -g 'daemon off;' & PIDS+=($!)

# warden, its access log on disk as a deployment would have it.
mkdir -p "$RUN/data"
WARDEN_ADMIN_PASSWORD=bench-password-1 WARDEN_TRUSTED_PROXIES=127.0.0.1 WARDEN_RETENTION_ROWS=0 \
  "$BUILD/warden" serve --listen "127.0.0.1:$WARDEN_PORT" --data "$RUN/data" --policies "$ROOT/policies" \
  >"$RUN/warden.out" 2>"$RUN/warden.log" & PIDS+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$WARDEN_PORT/healthz" >/dev/null && break; sleep 0.1; done
W=http://127.0.0.1:$WARDEN_PORT
J='Content-Type: application/json'
S=$(curl -sf "$W/v1/auth/login" -H "$J" -d '{"email":"admin@localhost","password":"bench-password-1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -sf "$W/v1/service-accounts" -H "Authorization: Bearer $S" -H "$J" \
  -d '{"name":"bench-gw","copy_permissions_from":{"kind":"role","name":"viewer"}}' >/dev/null
T=$(curl -sf "$W/v1/service-accounts/bench-gw/tokens" -H "Authorization: Bearer $S" -H "$J" -d '{"name":"t"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# The two gateways: the example config, with and without its auth_request line.
gateway() {  # name port keep-auth
  local dir=$RUN/$1
  mkdir -p "$dir/tmp"
  sed -e "s/@LISTEN_PORT@/$2/" -e "s/@WARDEN_PORT@/$WARDEN_PORT/" -e "s/@UPSTREAM_PORT@/$UPSTREAM_PORT/" \
    "$ROOT/examples/nginx/nginx.conf" > "$dir/nginx.conf"
  [[ $3 == 1 ]] || sed -i '/^ *auth_request \/_warden;/d' "$dir/nginx.conf"
  nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' 2>"$dir/error.log" & PIDS+=($!)
}
gateway plain "$PLAIN_PORT" 0
gateway warden "$AUTH_PORT" 1
for port in $PLAIN_PORT $AUTH_PORT; do
  for _ in $(seq 1 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/companies/c1" -H "Authorization: Bearer $T") == 200 ]] && break
    sleep 0.1
  done
done
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AUTH_PORT/companies/c1") == 401 ]] ||
  { echo "forward_auth.sh: the warden gateway let a request without a token through" >&2; exit 1; }

decisions() { curl -s "$W/metrics" | awk '/^warden_decisions_total/ {s += $2} END {print s + 0}'; }
# "req/s p50_ms p99_ms non2xx errors" of one wrk run
run() {  # port wrk-args
  local out
  out=$(wrk $2 --latency -H "Authorization: Bearer $T" "http://127.0.0.1:$1/companies/c1")
  python3 - "$out" <<'EOF'
import re, sys
out = sys.argv[1]
def ms(label):
    m = re.search(r'^\s*' + label + r'%\s+([\d.]+)(us|ms|s)\s*$', out, re.M)
    if not m: return float('nan')
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == 'us' else v * 1000 if u == 's' else v
rps = float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1))
reqs = int(re.search(r'(\d+) requests in', out).group(1))
non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
errs = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
print(f"{rps:.0f} {ms('50'):.3f} {ms('99'):.3f} {int(non2xx.group(1)) if non2xx else 0} "
      f"{sum(map(int, errs.groups())) if errs else 0} {reqs}")
EOF
}

wrk -t2 -c16 -d3s -H "Authorization: Bearer $T" "http://127.0.0.1:$AUTH_PORT/companies/c1" >/dev/null
wrk -t2 -c16 -d3s -H "Authorization: Bearer $T" "http://127.0.0.1:$PLAIN_PORT/companies/c1" >/dev/null
echo "forward-auth through nginx against nginx alone; LOAD=$LOAD SINGLE=$SINGLE, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
fail=0
for rep in $(seq 1 "$REPS"); do
  for shape in load single; do
    args=$LOAD; [[ $shape == single ]] && args=$SINGLE
    read -r prps pp50 pp99 pbad perr _ <<<"$(run "$PLAIN_PORT" "$args")"
    before=$(decisions)
    read -r arps ap50 ap99 abad aerr areqs <<<"$(run "$AUTH_PORT" "$args")"
    sleep 0.2
    logged=$(( $(decisions) - before ))
    printf '%-6s %-7s plain  %8s rps  p50 %7s ms  p99 %7s ms  non2xx %s errors %s\n' "$rep" "$shape" "$prps" "$pp50" "$pp99" "$pbad" "$perr"
    printf '%-6s %-7s warden %8s rps  p50 %7s ms  p99 %7s ms  non2xx %s errors %s  decisions %s for %s answers\n' \
      "$rep" "$shape" "$arps" "$ap50" "$ap99" "$abad" "$aerr" "$logged" "$areqs"
    python3 -c "import sys; p,a,pp,ap,p9,a9=map(float,sys.argv[1:]); print(f'       {\"\":7} ratio  warden/plain req/s {a/p:.2f}  p50 +{(ap-pp)*1000:.0f} us ({ap/pp:.1f}x)  p99 {a9/p9:.1f}x')" \
      "$prps" "$arps" "$pp50" "$ap50" "$pp99" "$ap99"
    # Each answered request is one decision; up to one request per connection may still have
    # been in flight when wrk stopped counting.
    conns=$(sed -n 's/.*-c\([0-9]*\).*/\1/p' <<<"$args")
    if (( pbad + perr + abad + aerr > 0 )); then echo "FAIL: a request was not a 200"; fail=1; fi
    if (( logged < areqs || logged > areqs + conns )); then echo "FAIL: $logged decisions for $areqs answers"; fail=1; fi
  done
done
exit $fail
