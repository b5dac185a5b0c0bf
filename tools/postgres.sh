#!/usr/bin/env bash
# Starts (idempotently) the local PostgreSQL that the store's conformance tests run against,
# on 127.0.0.1:5432 with user `postgres`, password `postgres` and a database `test`, and prints
# the URL to use on stdout:
#
#   export VALET_TEST_DATABASE_URL="$(tools/postgres.sh)"
#
# Made for the Debian CI machine (postgresql-15 installed, cluster down). Run as root on a fresh
# machine it installs PostgreSQL from apt if it is missing. When the server already answers, it
# only checks the login and prints the URL (well under a second). Diagnostics go to stderr.
set -euo pipefail

HOST=127.0.0.1
PORT=5432
USER_NAME=postgres
PASSWORD=postgres
DB=test
URL="postgres://${USER_NAME}:${PASSWORD}@${HOST}:${PORT}/${DB}"

say() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Can we log in over TCP with the password and reach the test database?
login_ok() {
  command -v psql >/dev/null 2>&1 || return 1
  PGPASSWORD="$PASSWORD" PGCONNECT_TIMEOUT=3 \
    psql -h "$HOST" -p "$PORT" -U "$USER_NAME" -d "$DB" -XtAqc 'SELECT 1' >/dev/null 2>&1
}

if login_ok; then
  echo "$URL"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "PostgreSQL at ${HOST}:${PORT} is not usable and setting it up needs root; rerun as root"

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  say "installing PostgreSQL from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi

# The cluster on our port: first the one already configured for it, else create one.
cluster=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PORT" '$3 == p { print $1 " " $2; exit }')
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || die "no PostgreSQL server under /usr/lib/postgresql after installing"
  say "creating cluster ${version}/main on port ${PORT}"
  pg_createcluster --port "$PORT" "$version" main >&2
  cluster="$version main"
fi
read -r version name <<<"$cluster"

status=$(pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1 == v && $2 == n { print $4 }')
if [ "$status" != "online" ]; then
  say "starting cluster ${version}/${name}"
  pg_ctlcluster "$version" "$name" start >&2 || die "pg_ctlcluster $version $name start failed; see /var/log/postgresql/postgresql-${version}-${name}.log"
fi

# Wait until the server accepts connections (it usually does at once).
for _ in $(seq 1 50); do
  pg_isready -q -h "$HOST" -p "$PORT" && break
  sleep 0.2
done
pg_isready -q -h "$HOST" -p "$PORT" || die "PostgreSQL ${version}/${name} does not accept connections on ${HOST}:${PORT}"

# As the postgres OS user over the local socket (peer auth): set the password (the stock
# pg_hba.conf asks for scram-sha-256 on 127.0.0.1) and create the test database.
as_postgres() { runuser -u postgres -- psql -p "$PORT" -XtAq "$@"; }
as_postgres -c "ALTER USER ${USER_NAME} PASSWORD '${PASSWORD}'" >&2
if [ "$(as_postgres -c "SELECT 1 FROM pg_database WHERE datname = '${DB}'")" != "1" ]; then
  say "creating database ${DB}"
  as_postgres -c "CREATE DATABASE ${DB}" >&2
fi

login_ok || die "cannot log in as ${USER_NAME} over TCP at ${HOST}:${PORT}; check pg_hba.conf of cluster ${version}/${name}"
echo "$URL"
