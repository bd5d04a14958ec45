# Helpers shared by the bench scripts (sourced, not run). They use the caller's $PID.

# SIGTERM the server whose pid is in PID (if it still runs), wait for it to exit (SIGKILL
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
