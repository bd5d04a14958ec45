#!/usr/bin/env bash
# The README's set-up commands. On a fresh Debian 12 machine (as root) they install the Debian
# packages they need, configure with CMake + Ninja and build.
#   bash scripts/dev.sh run    build, then start warden on its embedded defaults
#                              (SQLite under ./data, policies from ./policies, 127.0.0.1:8080)
#   bash scripts/dev.sh test   build and run every test with ctest, in a normal build and in an
#                              AddressSanitizer + UndefinedBehaviorSanitizer build, then every
#                              libFuzzer target for FUZZ_SECONDS (default 60) each
#                              (scripts/fuzz_ci.sh, clang-14); fails if any of them fails.
#                              The web console's browser tests (tests/console/) need Node.js 20
#                              with npm, Debian's chromium and playwright-core from npm (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(g++ cmake ninja-build pkg-config git curl openssl sqlite3 libsqlite3-dev zlib1g-dev libssl-dev
  libyaml-cpp-dev libjemalloc-dev libre2-dev libcpp-httplib-dev node-llhttp nlohmann-json3-dev libsimdjson-dev libcli11-dev catch2
  libbenchmark-dev wrk python3 clang-14 libclang-rt-14-dev nginx caddy chromium libpq-dev postgresql)
JOBS=${JOBS:-$(nproc)}

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
  fi
  if ! command -v npm >/dev/null; then  # the machines ship Node.js 20 with npm; else Debian's
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq nodejs npm
  fi
}

# playwright-core at the version of tests/console/package-lock.json; it drives /usr/bin/chromium
# and never downloads a browser of its own.
console_deps() {
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/console --no-audit --no-fund --loglevel=error
}

build() {  # dir, extra cmake args...
  local dir=$1; shift
  [ -f "$dir/build.ninja" ] || cmake -S . -B "$dir" -G Ninja "$@"
  cmake --build "$dir" -j "$JOBS"
}

case "${1:-}" in
  run)
    deps
    build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    shift
    exec ./build/warden serve "$@"
    ;;
  test)
    deps
    console_deps
    export WARDEN_CONSOLE_REQUIRED=1  # the browser tests fail, not skip, without their tools
    build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    (cd build && ctest --output-on-failure -j 2)
    build build-san -DCMAKE_BUILD_TYPE=Debug -DWARDEN_SANITIZE=ON -DWARDEN_BENCH=OFF
    (cd build-san && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 2)
    JOBS=$JOBS bash scripts/fuzz_ci.sh
    ;;
  build)
    deps
    build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    ;;
  *)
    echo "usage: bash scripts/dev.sh run|test|build" >&2
    exit 2
    ;;
esac
