#!/usr/bin/env bash
# with_test_pg.sh URL_FILE COMMAND...: runs COMMAND with WARDEN_TEST_PG set to the server
# scripts/test_pg.sh started (unless WARDEN_TEST_PG is already set), or exits 77 (ctest:
# skipped) saying why when there is none.
set -euo pipefail
url_file=${1:?URL file}
shift
if [ -z "${WARDEN_TEST_PG:-}" ] && [ -s "$url_file" ]; then
  WARDEN_TEST_PG=$(cat "$url_file")
  export WARDEN_TEST_PG
fi
if [ -z "${WARDEN_TEST_PG:-}" ]; then
  echo "SKIPPED: no PostgreSQL for this test (set WARDEN_TEST_PG to a libpq URL, or install the postgresql package)"
  exit 77
fi
exec "$@"
