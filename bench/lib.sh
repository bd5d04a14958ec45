# Helpers shared by the bench scripts (sourced, not run).

# stop_pid: SIGTERM the server whose pid is in PID (if it still runs), wait for it to exit (SIGKILL
# after STOP_WAIT tenths of a second, default 100), then clear PID.
stop_pid() {
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID"
    for _ in $(seq 1 "${STOP_WAIT:-100}"); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PID" 2>/dev/null && { echo "$(basename "$0"): pid $PID did not stop" >&2; kill -9 "$PID"; }
    wait "$PID" 2>/dev/null || true
  fi
  PID=""
}

# warm_tokens URL WRK_ARGS verifies every token of
# $WARDEN_BENCH_TOKENS once, in file order (bench/check.lua's rotate shape, one wrk thread so
# one Lua counter walks the file), each wrk run going on where the last stopped. Prints one
# "  warm: offset N: RESULT ..." line per run and sets WARM_SENT (checks sent) and WARM_FAILED
# (non-200, wrong decisions and socket errors). Needs ROOT (the repository).
warm_tokens() {
  local url=$1 args=$2 total res n b
  total=$(wc -l < "$WARDEN_BENCH_TOKENS")
  WARM_SENT=0 WARM_FAILED=0
  while (( WARM_SENT < total )); do
    res=$(WARDEN_BENCH_SHAPE=rotate WARDEN_BENCH_THREADS=1 WARDEN_BENCH_OFFSET=$WARM_SENT \
      wrk $args --latency -s "$ROOT/bench/check.lua" "$url" | grep '^RESULT')
    echo "  warm: offset $WARM_SENT: $res"
    n=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$res")
    for b in $(sed -n 's/.*non200=\([0-9]*\) wrong_decision=\([0-9]*\) sock_err=\([0-9]*\).*/\1 \2 \3/p' <<<"$res"); do
      WARM_FAILED=$((WARM_FAILED + b))
    done
    (( n > 0 )) || { echo "warm_tokens: no requests completed" >&2; return 1; }
    WARM_SENT=$((WARM_SENT + n))
  done
}
