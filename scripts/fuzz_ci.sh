#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz/ for FUZZ_SECONDS each (default 60) with
# bench/fuzz.sh, one after another; fails if any target finds a crash, leak, timeout or OOM
# (its input is kept in build-fuzz/findings/<target>/). Called by `scripts/dev.sh test`.
# With the default, the four targets take about 4 minutes plus the first build of build-fuzz/.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
failed=()
mkdir -p build-fuzz
for dir in tests/fuzz/corpus/*/; do
  target=$(basename "$dir")
  [ -f "tests/fuzz/${target}_fuzz.cc" ] || continue  # a corpus waiting for its target (http_framing)
  echo "== fuzz $target for ${seconds}s"
  log=build-fuzz/fuzz-$target.log
  if ! bash bench/fuzz.sh "$target" "$seconds" > "$log" 2>&1; then
    failed+=("$target")
    tail -n 60 "$log"
  fi
  grep -E '^stat::number_of_executed_units' "$log" || true
done
if ((${#failed[@]})); then
  echo "fuzzing found problems in: ${failed[*]} (inputs in build-fuzz/findings/)" >&2
  exit 1
fi
echo "fuzzing: no findings"
