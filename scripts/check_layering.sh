#!/usr/bin/env bash
# Fails when a source folder includes a folder it must not depend on (DESIGN.md section 2):
#   common <- engine, common <- store, {common, engine, store} <- server,
# and inside server/ the rooms of DESIGN.md 2.1.
# Also keeps third-party headers in the folder that owns them.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
fail=0
check() {  # folder, forbidden include regex, reason
  local hits
  hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($2)" "$root/$1" --include='*.h' --include='*.cc' 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "layering violation: $1/ $3:"; echo "$hits"; fail=1
  fi
}
check common 'engine/|store/|server/' "must not include engine/, store/ or server/"
check engine 'store/|server/' "must not include store/ or server/"
check store 'engine/|server/' "must not include engine/ or server/"
check common 'yaml-cpp/|re2/|sqlite3|libpq|httplib|llhttp' "must not use yaml-cpp, re2, sqlite3, libpq, httplib or llhttp"
check engine 'sqlite3|libpq|httplib|llhttp|openssl/' "must not use sqlite3, libpq, httplib, llhttp or OpenSSL directly"
check store 'yaml-cpp/|re2/|httplib|llhttp' "must not use yaml-cpp, re2, httplib or llhttp"
check server 'sqlite3|libpq|yaml-cpp/|re2/' "must not use sqlite3, libpq, yaml-cpp or re2 (those belong to store/ and engine/)"
# Nothing above store/ knows which backend runs: server/ opens stores through store_factory.h.
check server 'store/(sqlite_store|sqlite_db|pg_store|pg_conn)\.h' "must not name a store backend (use store/store_factory.h)"
# server/'s rooms (DESIGN.md 2.1): http <- ops <- check <- admin <- app; console beside http.
# Only http/ sees httplib and llhttp; the others see its Request and Response.
check server/http 'server/(ops|check|admin|console|app|config)' "must not include the rooms above it"
check server/ops 'server/(check|admin|console|app)' "must not include check/, admin/, console/ or app"
check server/check 'server/(admin|console|app)' "must not include admin/, console/ or app"
check server/admin 'server/(console|app)' "must not include console/ or app"
for room in ops check admin console; do
  check server/$room 'httplib|llhttp' "must not use httplib or llhttp (http/ owns them)"
done
if [ $fail = 0 ]; then echo "layering ok"; fi
exit $fail
