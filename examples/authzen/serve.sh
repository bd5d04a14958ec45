#!/usr/bin/env bash
# Serves one AuthZEN interop scenario: examples/authzen/serve.sh SCENARIO PORT DATA_DIR
#
# Starts warden on 127.0.0.1:PORT with the scenario's policies (SCENARIO/policies) and
# public_url http(s)://127.0.0.1:PORT, imports the scenario's directory (SCENARIO/directory.json),
# creates the PEP's service account `pep` (a copy of the role `pep`: authzen evaluate and
# search) with a new token written to DATA_DIR/pep-token, and stays in the foreground until
# SIGINT/SIGTERM. With WARDEN_TLS_CERT and WARDEN_TLS_KEY set it serves https. The binary is
# WARDEN_BIN, else build/warden of this checkout. DATA_DIR may be reused: the admin password
# of its first run is kept in DATA_DIR/admin-password, and the directory is imported again.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 SCENARIO PORT DATA_DIR   (SCENARIO: todo, api-gateway, search, idp, certification)" >&2
  exit 2
fi
scenario=$1 port=$2 data=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ ! -d "$here/$scenario/policies" ]; then
  echo "no scenario '$scenario' in $here" >&2
  exit 2
fi
bin=${WARDEN_BIN:-$root/build/warden}
[ -x "$bin" ] || { echo "no warden binary at $bin (set WARDEN_BIN)" >&2; exit 2; }

scheme=http
[ -n "${WARDEN_TLS_CERT:-}" ] && scheme=https
url="$scheme://127.0.0.1:$port"
mkdir -p "$data"
chmod 700 "$data"
if [ ! -s "$data/admin-password" ]; then
  (umask 077; head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$data/admin-password")
fi
password=$(cat "$data/admin-password")

WARDEN_ADMIN_PASSWORD=$password WARDEN_PUBLIC_URL=${WARDEN_PUBLIC_URL:-$url} \
  "$bin" serve --listen "127.0.0.1:$port" --data "$data" --policies "$here/$scenario/policies" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM

# curl with the scenario's CA when the certificate is self-signed (-k: the tests' certificates).
call() { curl -sS -k --max-time 10 "$@"; }
for _ in $(seq 1 200); do
  if call -o /dev/null -f "$url/readyz" 2>/dev/null; then break; fi
  kill -0 "$pid" 2>/dev/null || { wait "$pid"; exit 1; }
  sleep 0.05
done

json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }
session=$(call -X POST "$url/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"admin@localhost\",\"password\":\"$password\"}" | json_field token)
[ -n "$session" ] || { echo "serve.sh: cannot log in as admin@localhost" >&2; kill "$pid"; exit 1; }
auth=(-H "Authorization: Bearer $session" -H 'Content-Type: application/json')

call -o /dev/null -f -X POST "$url/v1/directory/import" "${auth[@]}" --data-binary "@$here/$scenario/directory.json" ||
  { echo "serve.sh: the directory import failed" >&2; kill "$pid"; exit 1; }
# The account exists when DATA_DIR is reused (409): it then gets another token.
call -o /dev/null -X POST "$url/v1/service-accounts" "${auth[@]}" \
  -d '{"name":"pep","description":"AuthZEN PEP","copy_permissions_from":{"kind":"role","name":"pep"}}'
token=$(call -X POST "$url/v1/service-accounts/pep/tokens" "${auth[@]}" -d '{"name":"serve.sh"}' | json_field token)
[ -n "$token" ] || { echo "serve.sh: cannot create the PEP token" >&2; kill "$pid"; exit 1; }
(umask 077; printf '%s\n' "$token" > "$data/pep-token.tmp")
mv "$data/pep-token.tmp" "$data/pep-token"
echo "serve.sh: scenario $scenario at $url (PEP token in $data/pep-token)"

wait "$pid"
