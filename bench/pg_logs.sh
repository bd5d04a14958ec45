#!/usr/bin/env bash
# The LOGS page (one account's history, newest first, cursor paging) on the PostgreSQL store
# with ROWS decisions spread over DAYS day partitions and ACCOUNTS accounts, one of which (the
# hot one) holds 10% of all rows (issue 17: at most 10 ms with 50M decisions).
#
#   ROWS=50000000 bench/pg_logs.sh          # the issue's size (about 20 GB of table and indexes)
#   ROWS=5000000 SKIP_BUILD=1 bench/pg_logs.sh
# Creates the schema with warden itself (a replica started once on the store), fills
# decision_log with INSERT ... SELECT generate_series, then times PgStore::Query's statement
# for that account (as the server prepares it) with psql: the first page, a page from the
# middle of its history (a cursor), a filtered page (allowed = false) and a rare account's first
# page, each REPEAT times; prints the median and max in ms and the plan of the first page.
# Env: BUILD_DIR=build  SKIP_BUILD=1  ROWS=5000000  DAYS=30  ACCOUNTS=10000  REPEAT=50
#      KEEP=1 (leave the filled server running and say how to time it again)
#      REUSE=DIR (time the server a KEEP=1 run left in DIR again, with the same ROWS, without filling; the fill of
#      50M rows takes ~25 min, so fill once, then time on a quiet machine)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) BUILD=$BUILD_DIR ;; *) BUILD=$ROOT/$BUILD_DIR ;; esac
ROWS=${ROWS:-5000000}
DAYS=${DAYS:-30}
ACCOUNTS=${ACCOUNTS:-10000}
REPEAT=${REPEAT:-50}
command -v psql >/dev/null || { echo "pg_logs.sh: psql is not installed (postgresql-client)" >&2; exit 1; }
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then cmake --build "$BUILD" --target warden -j2 >&2; fi
if [[ -n "${REUSE:-}" ]]; then
  WORK=$REUSE
  cleanup() { :; }
else
  WORK=$(mktemp -d /tmp/warden-pg-logs.XXXXXX)
  cleanup() {
    if [[ "${KEEP:-0}" == 1 ]]; then
      echo "kept: the server is still running; time it again with REUSE=$WORK, stop it with" \
        "scripts/test_pg.sh stop $WORK/pg.url" >&2
    else
      bash "$ROOT/scripts/test_pg.sh" stop "$WORK/pg.url" || true
      rm -rf "$WORK"
    fi
  }
fi
trap cleanup EXIT
if [[ -z "${REUSE:-}" ]]; then
  bash "$ROOT/scripts/test_pg.sh" start "$WORK/pg.url" >&2
fi
URL=$(cat "$WORK/pg.url")
if [[ -z "${REUSE:-}" ]]; then
# The schema, as a replica creates it.
mkdir -p "$WORK/data"
WARDEN_STORE=$URL WARDEN_ADMIN_PASSWORD=logs-bench-password "$BUILD/warden" serve --listen 127.0.0.1:0 \
  --data "$WORK/data" --policies "$ROOT/policies" >"$WORK/warden.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "warden serving" "$WORK/warden.out" && break; sleep 0.1; done
kill $pid; wait $pid || true
fi

day0=$(( $(date +%s) / 86400 - DAYS + 1 ))
t0=$(( day0 * 86400000 ))
span=$(( DAYS * 86400000 ))
echo "# warden $(git -C "$ROOT" rev-parse --short HEAD) | $(nproc) CPUs | load $(cut -d' ' -f1-3 /proc/loadavg) | ROWS=$ROWS DAYS=$DAYS ACCOUNTS=$ACCOUNTS | $(date -u +%FT%TZ)"
start=$(date +%s)
if [[ -z "${REUSE:-}" ]]; then
{
  for d in $(seq 0 $((DAYS - 1))); do
    day=$((day0 + d))
    echo "CREATE TABLE decision_log_day$day PARTITION OF decision_log FOR VALUES FROM ($((day * 86400000))) TO ($(((day + 1) * 86400000)));"
  done
  cat <<EOF
INSERT INTO decision_log (seq, id, time, tenant_id, principal_type, principal_id, principal_name, token_id, model,
  action, resource_id, allowed, reason, rule, eval_error, policy_revision, client_addr, method, path, request_id, latency_us)
SELECT g, lpad(to_hex(g), 26, '0'), $t0 + (g::numeric * $span / ($ROWS + 1))::bigint, 'default', 'service_account', p,
  'name-' || p, 'tok' || lpad((g % 97)::text, 7, '0'), CASE WHEN g % 3 = 0 THEN 'invoice' ELSE 'company' END,
  CASE WHEN g % 2 = 0 THEN 'view' ELSE 'update' END, 'r' || (g % 1000), g % 5 <> 0,
  CASE WHEN g % 5 <> 0 THEN 'ALLOW_RULE' ELSE 'NO_MATCHING_ALLOW' END, 'rule-1', '', 'rev1', '10.0.0.1', 'POST',
  '/v1/check', 'req-' || g, 40 + g % 60
FROM (SELECT g, CASE WHEN g % 10 = 0 THEN 'acct-hot' ELSE 'acct-' || (hashint4(g::int) & 2147483647) % $ACCOUNTS END AS p
      FROM generate_series(1, $ROWS) g) s;
UPDATE decision_seq SET last = $ROWS;
INSERT INTO decision_counts SELECT tenant_id, principal_id, COUNT(*) FROM decision_log GROUP BY 1, 2;
ANALYZE decision_log;
EOF
} | psql -q -v ON_ERROR_STOP=1 "$URL" >&2
echo "filled $ROWS rows in $(( $(date +%s) - start )) s; $(psql -qtA "$URL" -c "SELECT pg_size_pretty(SUM(pg_total_relation_size(c.oid))) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'decision_log'::regclass")"
fi  # REUSE

cols="seq, id, tenant_id, principal_type, principal_id, principal_name, token_id, model, action, resource_id, reason, rule, eval_error, policy_revision, client_addr, method, path, request_id, caller_id, caller_name, time, allowed, latency_us"
mid=$(psql -qtA "$URL" -c "SELECT seq FROM decision_log WHERE principal_id = 'acct-hot' ORDER BY seq OFFSET $((ROWS / 20)) LIMIT 1")
time_case() {  # label statement: wall time in psql (\timing) and the server's execution time
  local label=$1 exec=$2 prep wall server
  prep="SET plan_cache_mode = 'force_generic_plan';
PREPARE q1 (text, text, bigint, bigint) AS SELECT $cols FROM decision_log WHERE tenant_id = \$1 AND principal_id = \$2 AND seq < \$3 ORDER BY seq DESC LIMIT \$4;
PREPARE q2 (text, text, bigint, boolean, bigint) AS SELECT $cols FROM decision_log WHERE tenant_id = \$1 AND principal_id = \$2 AND seq < \$3 AND allowed = \$4 ORDER BY seq DESC LIMIT \$5;"
  wall=$( { echo "$prep"; echo '\timing on'; for _ in $(seq 1 "$REPEAT"); do echo "$exec"; done; } | psql -q "$URL" |
    sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -n | awk '{a[NR]=$1} END {printf "%.2f | %.2f", a[int((NR+1)/2)], a[NR]}')
  server=$( { echo "$prep"; for _ in $(seq 1 "$REPEAT"); do echo "EXPLAIN (ANALYZE, TIMING OFF) $exec"; done; } | psql -qtA "$URL" |
    sed -n 's/^Execution Time: \([0-9.]*\) ms/\1/p' | sort -n | awk '{a[NR]=$1} END {printf "%.2f | %.2f", a[int((NR+1)/2)], a[NR]}')
  echo "| $label | $wall | $server |"
}
echo "| LOGS page (51 rows) | psql median ms | psql max ms | server median ms | server max ms |"
echo "|---|---:|---:|---:|---:|"
time_case "hot account (10% of rows), first page" "EXECUTE q1('default', 'acct-hot', 9223372036854775807, 51);"
time_case "hot account, page at a cursor mid-history" "EXECUTE q1('default', 'acct-hot', $mid, 51);"
time_case "hot account, denied only, first page" "EXECUTE q2('default', 'acct-hot', 9223372036854775807, false, 51);"
time_case "rare account, first page" "EXECUTE q1('default', 'acct-42', 9223372036854775807, 51);"
echo
echo "plan of the first page:"
psql -qtA "$URL" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT seq FROM decision_log WHERE tenant_id = 'default' AND principal_id = 'acct-hot' AND seq < 9223372036854775807 ORDER BY seq DESC LIMIT 51" | head -12
