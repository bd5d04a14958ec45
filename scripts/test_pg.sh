#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests (ctest's pg fixture, tests/CMakeLists.txt).
#   test_pg.sh start URL_FILE   initdb into a new temporary directory, start the server on a
#                               free port of 127.0.0.1 and write its libpq URL to URL_FILE
#   test_pg.sh stop URL_FILE    stop it and remove the directory
# initdb and postgres refuse to run as root: as root they run as the unprivileged user
# $WARDEN_TEST_PG_USER (default nobody). Without PostgreSQL's server binaries (Debian package
# postgresql) `start` writes no URL and the tests that need one skip, saying so.
set -euo pipefail
cmd=${1:?start or stop}
url_file=${2:?URL file}
dir_file=$url_file.dir

as_pg_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u "${WARDEN_TEST_PG_USER:-nobody}" -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    rm -f "$url_file" "$dir_file"
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
      echo "test_pg.sh: no PostgreSQL server binaries (apt-get install postgresql); the PostgreSQL tests skip"
      exit 0
    fi
    dir=$(mktemp -d /tmp/warden-test-pg.XXXXXX)
    if [ "$(id -u)" = 0 ]; then chown "${WARDEN_TEST_PG_USER:-nobody}" "$dir"; fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg_user "$bindir/initdb" -D "$dir/data" -U warden -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log"; exit 1; }
    # fsync off unless WARDEN_TEST_PG_FSYNC=on (bench/replicas.sh): a test server's crash
    # safety does not matter, and CI time does. Commits still wait for the server
    # (synchronous_commit), which is what warden's durability relies on.
    fsync=${WARDEN_TEST_PG_FSYNC:-off}
    as_pg_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=$fsync -c full_page_writes=$fsync -c max_connections=300" \
      start >/dev/null || { cat "$dir/server.log"; exit 1; }
    echo "$dir" >"$dir_file"
    echo "postgresql://warden@127.0.0.1:$port/postgres" >"$url_file"
    echo "test_pg.sh: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on port $port ($dir)"
    ;;
  stop)
    [ -s "$dir_file" ] || exit 0
    dir=$(cat "$dir_file")
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    as_pg_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir" "$url_file" "$dir_file"
    ;;
  *)
    echo "usage: test_pg.sh start|stop URL_FILE" >&2
    exit 2
    ;;
esac
