#!/usr/bin/env bash
# Runs the store tests against a throwaway PostgreSQL (and SQLite, as always).
#
#   crates/store/tests/pg.sh                 # cargo test -p store
#   crates/store/tests/pg.sh some_test_name  # extra args go to cargo test
#
# Needs the PostgreSQL server binaries (Debian: apt-get install postgresql).
# The cluster lives in a temp dir, listens on 127.0.0.1:$PGPORT (default
# 55432) and a socket in that dir, trusts local connections, and is stopped
# and deleted on exit. Each test creates and drops its own database in it.
set -euo pipefail

PGPORT="${PGPORT:-55432}"
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
    echo "pg.sh: no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)" >&2
    exit 1
fi

data="$(mktemp -d /tmp/tandem-pg.XXXXXX)"
# initdb refuses to run as root: run the server as the postgres user then.
as_pg=()
if [[ "$(id -u)" == 0 ]]; then
    chown postgres: "$data"
    as_pg=(runuser -u postgres --)
fi

stop() {
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$data/db" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$data"
}
trap stop EXIT

"${as_pg[@]}" "$bindir/initdb" -D "$data/db" -U postgres --auth=trust -E UTF8 >"$data/initdb.log"
"${as_pg[@]}" "$bindir/pg_ctl" -D "$data/db" -l "$data/server.log" -w \
    -o "-p $PGPORT -k $data -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null

export TANDEM_TEST_PG_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
echo "pg.sh: PostgreSQL up, TANDEM_TEST_PG_URL=$TANDEM_TEST_PG_URL"
cd "$(dirname "$0")/../../.."
cargo test -p store "$@"
