#!/usr/bin/env bash
# Runs one libFuzzer target of tests/fuzz/ for SECONDS (default 60), building it first into
# build-fuzz/ (clang++-14, -DWARDEN_FUZZ=ON). See docs/fuzzing.md.
#   bash bench/fuzz.sh policy_yaml 600        # or policy_yaml_fuzz
#   FUZZ_ARGS="-jobs=2 -workers=2" bash bench/fuzz.sh condition 300
# The corpus grows in build-fuzz/corpus/<target>/ (seeded from tests/fuzz/corpus/<target>/);
# crash-*, leak-*, timeout-* and oom-* inputs land in build-fuzz/findings/<target>/. Exits
# non-zero when the target finds one. Reproduce: build-fuzz/tests/fuzz/<target>_fuzz FILE
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: bench/fuzz.sh TARGET [SECONDS]}
target=${target%_fuzz}
seconds=${2:-60}
[ -d "tests/fuzz/corpus/$target" ] || { echo "no target '$target' (see tests/fuzz/)" >&2; exit 2; }

if [ ! -f build-fuzz/build.ninja ]; then
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWARDEN_FUZZ=ON \
    -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14 >/dev/null
fi
cmake --build build-fuzz -j "${JOBS:-2}" --target "${target}_fuzz"

corpus=build-fuzz/corpus/$target
findings=build-fuzz/findings/$target
mkdir -p "$corpus" "$findings"
# ASan's leak check is on (detect_leaks), its quarantine small (the YAML targets allocate a
# lot: 700 MB of RSS with the default); UBSan aborts on the first report.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:quarantine_size_mb=16} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "build-fuzz/tests/fuzz/${target}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$findings/" ${FUZZ_ARGS:-} "$corpus" "tests/fuzz/corpus/$target"
