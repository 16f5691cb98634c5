#!/usr/bin/env sh
# `make postgres`: a throwaway PostgreSQL cluster for the tests on 127.0.0.1:$PG_PORT (trust
# authentication, loopback only, data in $PG_DIR), then prints the line that points the
# tests at it:  eval "$(make -s postgres)"   (`make postgres-stop` stops it)
# Installs Debian's PostgreSQL first if it is missing (needs root). A cluster already
# answering on the port is reused.
set -eu
PG_PORT="${PG_PORT:-54329}"
PG_DIR="${PG_DIR:-${TMPDIR:-/tmp}/allocator-pg-$PG_PORT}"
say() { echo "postgres: $*" >&2; }

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(bindir)" ]; then
    if [ "$(id -u)" != 0 ]; then
        say "PostgreSQL is not installed: run as root, or: apt-get install -y postgresql"
        exit 1
    fi
    say "installing Debian's PostgreSQL"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
BIN="$(bindir)"

# initdb and the server refuse to run as root: as root, run them as the postgres user
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "${1:-}" = stop ]; then
    [ ! -f "$PG_DIR/postmaster.pid" ] || as_owner "$BIN/pg_ctl" -D "$PG_DIR" -m fast stop >&2
    exit 0
fi
if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    if [ ! -f "$PG_DIR/PG_VERSION" ]; then
        mkdir -p "$PG_DIR"
        [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
        chmod 700 "$PG_DIR"
        say "initdb $PG_DIR"
        as_owner "$BIN/initdb" -D "$PG_DIR" -U postgres -A trust --no-sync >/dev/null
    fi
    say "starting on 127.0.0.1:$PG_PORT"
    # a test cluster: no fsync (its data is thrown away), enough connections for the tests
    as_owner "$BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w -t 60 start -o \
        "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >&2
fi
echo "export ALLOCATOR_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
