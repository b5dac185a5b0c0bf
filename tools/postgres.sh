#!/usr/bin/env bash
# Starts (idempotently) a private PostgreSQL cluster for the tests and prints its URL:
#
#   export VALET_TEST_DATABASE_URL="$(tools/postgres.sh)"
#   tools/postgres.sh stop        # stops it (the data stays for the next start)
#   tools/postgres.sh restart     # restarts it (tests of a database that goes away)
#
# The cluster is this script's own: made with initdb in its own directory, on its own port
# (VALET_PG_PORT, default 55432), started and stopped with pg_ctl. It never connects to,
# reconfigures or changes the password of any PostgreSQL server it did not start; a system
# server on 5432 is left exactly as it is.
#
# Where the cluster lives: ~/.cache/valet/postgres (VALET_PG_DIR). PostgreSQL refuses to run as
# root, so as root the cluster runs as the `postgres` OS user and lives in
# /var/tmp/valet-postgres-$PORT instead (root's home is not readable by that user).
#
# When the cluster already answers, this prints the URL in well under a second; the first start
# (initdb) takes a few seconds. As root on a machine without PostgreSQL, it installs the server
# binaries from apt (Debian then creates its own `main` cluster, which this script never uses).
# Diagnostics go to stderr.
set -euo pipefail

HOST=127.0.0.1
PORT="${VALET_PG_PORT:-55432}"
USER_NAME=postgres
PASSWORD=postgres
DB=test
URL="postgres://${USER_NAME}:${PASSWORD}@${HOST}:${PORT}/${DB}"

say() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
  DIR="${VALET_PG_DIR:-/var/tmp/valet-postgres-${PORT}}"
  RUN_AS=(runuser -u postgres --)
else
  DIR="${VALET_PG_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/valet/postgres}"
  RUN_AS=()
fi
DATA="$DIR/data"
LOG="$DIR/server.log"

# The server binaries (Debian keeps them off PATH, under /usr/lib/postgresql/<version>/bin).
bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$found" ] && [ -x "$found/initdb" ] && echo "$found"
}

# Can we log in to our cluster over TCP with the password and reach the test database?
login_ok() {
  command -v psql >/dev/null 2>&1 || return 1
  PGPASSWORD="$PASSWORD" PGCONNECT_TIMEOUT=3 \
    psql -h "$HOST" -p "$PORT" -U "$USER_NAME" -d "$DB" -XtAqc 'SELECT 1' >/dev/null 2>&1
}

# Only our own cluster is ever stopped or restarted: the one whose data directory this
# script made. `restart` (for tests of a database that goes away under load) keeps the options.
case "${1:-}" in
  stop | restart)
    BIN=$(bindir) || die "no PostgreSQL server binaries found"
    [ -f "$DATA/postmaster.pid" ] || die "the private cluster in $DATA is not running"
    "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -m fast -w "$1" >&2
    [ "$1" = stop ] && exit 0
    ;;
esac

if [ -f "$DATA/PG_VERSION" ] && login_ok; then
  echo "$URL"
  exit 0
fi
# A server answers on our port but it is not our cluster: refuse rather than touch it.
if [ ! -f "$DATA/postmaster.pid" ] && command -v pg_isready >/dev/null 2>&1 \
  && pg_isready -q -h "$HOST" -p "$PORT"; then
  die "a PostgreSQL server this script did not start answers on ${HOST}:${PORT}; choose another port with VALET_PG_PORT"
fi

BIN=$(bindir) || true
if [ -z "$BIN" ]; then
  [ "$(id -u)" -eq 0 ] || die "PostgreSQL server binaries (initdb, pg_ctl) are missing; install postgresql"
  say "installing the PostgreSQL server binaries from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BIN=$(bindir) || die "no initdb after installing postgresql"
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
  say "creating a private cluster in $DATA (port $PORT)"
  mkdir -p "$DIR"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$DIR"
  chmod 700 "$DIR"
  pwfile="$DIR/pwfile"
  printf '%s\n' "$PASSWORD" >"$pwfile"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$pwfile"
  "${RUN_AS[@]}" "$BIN/initdb" -D "$DATA" -U "$USER_NAME" --pwfile="$pwfile" \
    --auth=scram-sha-256 -E UTF8 --no-instructions >&2
  rm -f "$pwfile"
fi

if ! "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  say "starting the private cluster on ${HOST}:${PORT}"
  # Sockets in the data directory: nothing is written to /var/run/postgresql.
  "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 30 \
    -o "-p $PORT -h $HOST -k $DATA -c max_connections=200 -c fsync=off -c full_page_writes=off" \
    start >&2 || die "pg_ctl start failed; see $LOG"
fi

if ! login_ok; then
  PGPASSWORD="$PASSWORD" psql -h "$HOST" -p "$PORT" -U "$USER_NAME" -d postgres -XtAq \
    -c "CREATE DATABASE ${DB}" >&2 || die "cannot create database ${DB} in the private cluster"
fi
login_ok || die "cannot log in as ${USER_NAME} at ${HOST}:${PORT}; see $LOG"
echo "$URL"
