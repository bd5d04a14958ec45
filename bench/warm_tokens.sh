# Sourced by bench scripts: warm_tokens URL WRK_ARGS verifies every token of
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
